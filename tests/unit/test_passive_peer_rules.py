"""The passive exchange and hftbacktest 2.4.4 agree on hand-made scenarios, rule by rule.

Each scenario runs here (exec/passive.py) and in hftbacktest's own interpreter
(tests/unit/passive_rules_hbt.py, partial-fill exchange); at each poll time every order's local state
(status, open lots, exchange time of its last response) must be the same. Skipped, saying so, when no
hftbacktest interpreter is found ($SCALPER_PEER_PYTHON, else /tmp/hbtenv/bin/python).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scalper.benchmarks.peer_maker import default_peer_python
from scalper.exec import passive as px
from scalper.exec.queue import QUEUE_PROB_LOG, QUEUE_PROB_POWER, QUEUE_RISK_AVERSE

pytestmark = pytest.mark.slow  # each scenario starts hftbacktest in its own interpreter

PEER_SCRIPT = Path(__file__).with_name("passive_rules_hbt.py")
MODELS = {"risk_averse": QUEUE_RISK_AVERSE, "power": QUEUE_PROB_POWER, "log": QUEUE_PROB_LOG}
# Our status -> hftbacktest's Status value (py-hftbacktest order.py).
HBT_STATUS = {
    px.ST_NEW: 0,
    px.ST_ACCEPTED: 1,
    px.ST_EXPIRED: 2,
    px.ST_FILLED: 3,
    px.ST_CANCELED: 4,
    px.ST_PARTIALLY_FILLED: 5,
}
BOOK = [[1, 0, 1, 100, 1.0], [1, 0, -1, 102, 0.5]]  # bid 100 x 10 lots, ask 102 x 5 lots
END = [[20_000, 0, -1, 104, 0.5]]

SCENARIOS = {
    "queue, partial fill, event before a same-time arrival": {
        "queue": ["risk_averse", 0.0],
        "events": BOOK
        + [
            [6_000, 1, -1, 100, 0.3],
            [6_000, 0, 1, 100, 0.7],
            [7_000, 1, -1, 100, 0.6],
            [8_000, 1, -1, 100, 0.2],
            [9_000, 1, -1, 100, 0.1],
        ]
        + END,
        "actions": [[5_000, "submit", 1, 100, 2, 1]],
        "polls": [5_500, 6_200, 6_400, 7_400, 8_400, 9_400, 20_000],
    },
    "modify keeps the queue for a smaller size, a new price re-queues": {
        "queue": ["risk_averse", 0.0],
        "events": BOOK
        + [
            [1_500, 0, 1, 100, 1.5],
            [1_600, 1, -1, 100, 0.4],
            [4_000, 1, -1, 100, 0.6],
            [5_000, 0, 1, 99, 0.3],
            [8_000, 1, -1, 99, 0.3],
            [9_000, 1, -1, 99, 0.1],
        ]
        + END,
        "actions": [[10, "submit", 1, 100, 3, 1], [2_000, "modify", 0, 100, 2], [4_500, "modify", 0, 99, 2]],
        "polls": [1_500, 3_500, 4_500, 5_800, 8_500, 9_500, 20_000],
    },
    "post-only across the book expires; the best bid moving through a sell fills it": {
        "queue": ["risk_averse", 0.0],
        "events": [[1, 0, 1, 100, 1.0], [1, 0, -1, 103, 0.5], [3_000, 0, 1, 101, 0.3], [4_000, 0, 1, 102, 0.3]] + END,
        "actions": [[10, "submit", -1, 102, 1, 1], [10, "submit", 1, 103, 1, 1]],
        "polls": [2_000, 3_500, 4_500, 20_000],
    },
    "trade through the price; IOC takes the touch": {
        "queue": ["risk_averse", 0.0],
        "events": BOOK + [[5_000, 1, -1, 99, 0.1]] + END,
        "actions": [[10, "submit", 1, 100, 3, 1], [10, "submit", 1, 102, 1, 2]],
        "polls": [2_000, 5_500, 20_000],
    },
    "cancel before a fill": {
        "queue": ["risk_averse", 0.0],
        "events": BOOK + [[3_000, 1, -1, 100, 1.5]] + END,
        "actions": [[10, "submit", 1, 100, 1, 1], [1_500, "cancel", 0]],
        "polls": [2_000, 3_500, 20_000],
    },
}
for _name, _model in (("power", 2.0), ("log", 0.0)):
    SCENARIOS[f"{_name} queue model: cancels advance the order"] = {
        "queue": [_name, _model],
        "events": BOOK
        + [[1_500, 0, 1, 100, 3.0], [2_000, 0, 1, 100, 2.0], [3_000, 1, -1, 100, 0.8], [4_000, 1, -1, 100, 0.1]]
        + END,
        "actions": [[10, "submit", 1, 100, 1, 1]],
        "polls": [2_500, 3_500, 4_500, 20_000],
    }


def _ours(sc):
    ex = px.new_exchange(
        tick_size=sc["tick"],
        lot_size=sc["lot"],
        entry_latency_ns=sc["entry"],
        response_latency_ns=sc["resp"],
        queue_model=MODELS[sc["queue"][0]],
        queue_param=sc["queue"][1],
    )
    times = sorted({e[0] for e in sc["events"]} | {a[0] for a in sc["actions"]} | set(sc["polls"]))
    local: dict[int, list[int]] = {}
    out = []
    for t in times:
        for ts, kind, side, tick, size in sc["events"]:
            if ts == t:
                assert px.on_event(ex, ts, kind, side, tick, size) == px.OK
        assert px.flush_requests(ex, t) == px.OK
        r = px.next_response(ex, t)
        while r >= 0:
            row = ex.ri[r]
            local[int(row[px.R_ID])] = [
                HBT_STATUS[int(row[px.R_STATUS])],
                int(row[px.R_LEAVES]),
                int(row[px.R_TS_EXCH]),
            ]
            r = px.next_response(ex, t)
        for a in sc["actions"]:
            if a[0] != t:
                continue
            if a[1] == "submit":
                oid = px.submit(ex, t, a[2], a[3], a[4], a[5])
                assert oid >= 0
                local[oid] = [0, a[4], 0]
            elif a[1] == "cancel":
                assert px.cancel(ex, t, a[2]) == px.OK
            else:
                assert px.modify(ex, t, a[2], a[3], a[4]) == px.OK
        if t in sc["polls"]:
            out.append([t, {str(k): v for k, v in sorted(local.items())}])
    return out


@pytest.fixture(scope="module")
def peer_python():
    python = default_peer_python()
    if python is None:
        pytest.skip("no hftbacktest interpreter: set SCALPER_PEER_PYTHON (hftbacktest==2.4.4 in its own venv)")
    return python


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_matches_hftbacktest(peer_python, name):
    sc = {"tick": 0.5, "lot": 0.1, "entry": 1_000, "resp": 300, **SCENARIOS[name]}
    proc = subprocess.run(
        [str(peer_python), str(PEER_SCRIPT)],
        input=json.dumps(sc),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert _ours(sc) == json.loads(proc.stdout)
