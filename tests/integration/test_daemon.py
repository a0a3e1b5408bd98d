"""``scalper run`` as a real process: a Binance recording through the replay server into the paper daemon,
with a real Redis journal, a real Prometheus scraping /metrics, and a kill -9 / restart recovery."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from scalper.exec.journal import IntentRecord
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_redis import RedisJournal
from scalper.exec.recovery import recover

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

USDM = "hftbacktest/binance_usdm"
FILES = ("ethusdt_20240718.gz", "ethusdt_20240719.gz")
RECOVERED = re.compile(r"recovered (\d+) journal records: position (\S+), realized (\S+), (\d+) order")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process with its output in a log file, and helpers to wait on that log."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.fh = log.open("wb")
        self.p = subprocess.Popen(
            [sys.executable, "-m", "scalper.engine.cli", *args], stdout=self.fh, stderr=subprocess.STDOUT
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            assert self.p.poll() is None, f"process exited early:\n{self.text()}"
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not seen in {timeout_s} s:\n{self.text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(timeout=timeout_s)
        self.fh.close()
        return rc

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.p.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def _replay_server(data_dir, tmp_path, speed: float) -> tuple[Proc, int]:
    port = _free_port()
    files = [str(data_dir / USDM / f) for f in FILES]
    srv = Proc(["replay-server", *files, "--port", str(port), "--speed", str(speed)], tmp_path / "server.log")
    srv.wait_for("serving")
    return srv, port


def _daemon_config(tmp_path, models: Path, metrics_port: int, journal: str, redis_url: str = "") -> Path:
    cfg = tmp_path / "daemon.toml"
    journal_lines = (
        f'journal = "file"\njournal_path = "{tmp_path / "journal.jsonl"}"'
        if journal == "file"
        else (f'journal = "redis"\nredis_url = "{redis_url}"\nstream_key = "test:journal"\nhalt_key = "test:halt"')
    )
    journal_lines += (
        f'\ncontrol_dir = "{tmp_path / "control"}"\njournal_fallback_path = "{tmp_path / "fallback.jsonl"}"'
        f'\njournal_mark_path = "{tmp_path / "journal.mark"}"'
    )
    cfg.write_text(
        f"""[daemon]
market = "usdm"
symbol = "ETHUSDT"
tick_size = 0.01
lot_size = 0.001
model_dir = "{models}"
metrics_port = {metrics_port}
{journal_lines}

[risk]
take_profit_bps = 5.0
stop_loss_bps = 3.0
max_position = 2.0
max_order_notional = 10000.0
initial_equity = 100000.0

[exec]
latency_ms = 5.0
taker_fee_bps = 0.5
"""
    )
    return cfg


def _daemon(tmp_path, cfg: Path, port: int, name: str) -> Proc:
    url = f"127.0.0.1:{port}"
    d = Proc(
        ["run", "-c", str(cfg), "--feed-url", f"ws://{url}", "--rest-url", f"http://{url}"], tmp_path / f"{name}.log"
    )
    d.wait_for("metrics on http")
    return d


def _scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {k: float(v) for k, v in re.findall(r"^(scalper_[^ ]+) ([^ ]+)$", body, re.M)}


def _until(pred, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.25)
    raise AssertionError("condition not met in time")


def test_daemon_paper_trades_into_redis_and_prometheus_scrapes_it(
    data_dir, eth_models, tmp_path, redis_process, prometheus_server
):
    redis_url = redis_process.url
    srv, port = _replay_server(data_dir, tmp_path, speed=5)
    metrics_port = _free_port()
    prom = prometheus_server([f"127.0.0.1:{metrics_port}"])
    daemon = _daemon(tmp_path, _daemon_config(tmp_path, eth_models, metrics_port, "redis", redis_url), port, "daemon")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (prom.value('scalper_orders_total{status="filled"}') or 0) >= 2:
            time.sleep(1)
        assert prom.value('up{job="scalper"}') == 1.0
        assert prom.value('scalper_events_total{kind="book"}') > 1_000
        assert prom.value("scalper_decisions_total") > 50
        assert prom.value('scalper_orders_total{status="filled"}') >= 2
        assert prom.value("scalper_book_valid") == 1.0
        assert prom.value("scalper_journal_writable") == 1.0
        assert prom.value("scalper_tick_to_decision_seconds_count") > 50

        # Halt switch: the Redis key moves trading without stopping the process.
        import redis as redis_client

        r = redis_client.Redis.from_url(redis_url)
        r.set("test:halt", "halted")
        _until(lambda: _scrape(metrics_port)["scalper_trading_state"] == 2.0)
        r.set("test:halt", "active")
        _until(lambda: _scrape(metrics_port)["scalper_trading_state"] == 0.0)
        r.delete("test:halt")

        # Redis outage: the feed goes on, entries stop while the journal cannot be written, nothing is lost.
        redis_process.kill()
        events = _scrape(metrics_port)['scalper_events_total{kind="book"}']
        _until(lambda: _scrape(metrics_port)["scalper_journal_writable"] == 0.0)
        _until(lambda: _scrape(metrics_port)["scalper_trading_state"] == 1.0)
        assert _scrape(metrics_port)['scalper_events_total{kind="book"}'] > events
        redis_process.start()
        _until(lambda: _scrape(metrics_port)["scalper_journal_writable"] == 1.0)
    finally:
        assert daemon.stop() == 0, daemon.text()
        srv.stop()
    assert "stopped: position" in daemon.text()
    entries = asyncio.run(_read(RedisJournal(redis_url, "test:journal")))
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1)), "journal lost or repeated a record"
    state = recover(entries)
    assert sum(1 for e in entries if isinstance(e.record, IntentRecord)) >= 2
    final = float(re.search(r"stopped: position (\S+),", daemon.text()).group(1))
    assert state.position == pytest.approx(final, abs=1e-12)


async def _read(backend):
    try:
        return await backend.read_all()
    finally:
        await backend.close()


def test_daemon_killed_with_sigkill_restarts_with_the_journaled_state(data_dir, eth_models, tmp_path):
    srv, port = _replay_server(data_dir, tmp_path, speed=10)
    cfg = _daemon_config(tmp_path, eth_models, 0, "file")
    journal = tmp_path / "journal.jsonl"
    first = _daemon(tmp_path, cfg, port, "first")
    rss_start = first.rss_kib()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count('"type":"fill"') < 3):
            time.sleep(0.2)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        before = asyncio.run(_read(FileJournal(journal)))
        want = recover(before)
        second = _daemon(tmp_path, cfg, port, "second")
        m = second.wait_for(RECOVERED.pattern)
        assert int(m.group(1)) == len(before)
        assert float(m.group(2)) == want.position
        assert float(m.group(3)) == want.realized_pnl
        assert int(m.group(4)) == len(want.open_orders)
        time.sleep(3)
        assert second.stop() == 0, second.text()
    finally:
        srv.stop()
    after = asyncio.run(_read(FileJournal(journal)))
    ids = [e.record.order_id for e in after if isinstance(e.record, IntentRecord)]
    assert len(ids) == len(set(ids)) and ids == sorted(ids), "an order id was reused after the restart"
    assert ids[0] == 1 and max(ids) >= want.next_order_id - 1
    recover(after)  # the whole journal, across the crash, still folds consistently
    assert rss_start > 0


def test_run_refuses_a_model_whose_features_differ(eth_models, tmp_path):
    import json
    import shutil

    from typer.testing import CliRunner

    from scalper.engine.cli import app

    bad = tmp_path / "bad_models"
    shutil.copytree(eth_models, bad)
    card = json.loads((bad / "h5s.card.json").read_text())
    card["feature_names"] = card["feature_names"][::-1]
    (bad / "h5s.card.json").write_text(json.dumps(card))
    cfg = _daemon_config(tmp_path, bad, 0, "file")
    res = CliRunner().invoke(app, ["run", "-c", str(cfg)])
    assert res.exit_code == 2
    assert "h5s.card.json: feature 0 is" in res.output


def test_sighup_reload_keeps_the_running_models_when_the_new_ones_fail(eth_models, tmp_path):
    import json
    import shutil

    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon

    live = tmp_path / "live_models"
    shutil.copytree(eth_models, live)
    daemon = Daemon(load_config(_daemon_config(tmp_path, live, 0, "file")))
    daemon.build_core(1)
    running = daemon.models
    card = json.loads((live / "h10s.card.json").read_text())
    card["feature_names"][3] = "made_up_feature"
    (live / "h10s.card.json").write_text(json.dumps(card))
    assert daemon.reload_models() is False
    assert daemon.models is running and daemon.core.models is running
    shutil.copy(eth_models / "h10s.card.json", live / "h10s.card.json")
    assert daemon.reload_models() is True
    assert daemon.models is not running and daemon.core.models is daemon.models


def test_an_inference_error_stops_entries_and_is_counted(eth_models, tmp_path):
    import numpy as np

    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon
    from scalper.risk.intent import TradingState

    daemon = Daemon(load_config(_daemon_config(tmp_path, eth_models, 0, "file")))
    daemon.build_core(1)

    def broken(_features):
        raise RuntimeError("onnxruntime: bad input")

    daemon.models.predictors[0].predict = broken
    daemon._decide(1, np.zeros(15), time.time_ns())
    from scalper.engine.metrics import snapshot

    assert snapshot(daemon.metrics)["scalper_inference_errors_total"] == 1.0
    assert daemon.risk.state == TradingState.REDUCING_ONLY


def test_an_engine_error_halts_trading_and_never_reaches_the_feed(eth_models, tmp_path):
    # Each way into the core (a code due before a frame, a frame's events, the general path's events).
    import numpy as np

    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon
    from scalper.engine.metrics import snapshot
    from scalper.features.kernels import CODE_DECISION, CODE_WATCH
    from scalper.ingest.tickfile import KIND_BOOK
    from scalper.risk.intent import TradingState

    daemon = Daemon(load_config(_daemon_config(tmp_path, eth_models, 0, "file")))
    daemon.build_core(1)

    def broken(*_args):
        raise RuntimeError("engine bug")

    daemon.core.on_code = broken
    now = time.time_ns()
    daemon.on_frame(0, 0, CODE_DECISION, now)
    daemon.on_frame(3, 3, CODE_WATCH, now)
    daemon.core.drive = broken
    one = np.ones(1, dtype=np.int64)
    daemon.on_events(
        {
            "ts_event": one * now,
            "ts_recv": one * now,
            "kind": np.array([KIND_BOOK], dtype=np.int8),
            "side": np.ones(1, dtype=np.int8),
            "price": np.ones(1),
            "size": np.ones(1),
            "flags": np.zeros(1, dtype=np.int8),
        }
    )
    assert snapshot(daemon.metrics)["scalper_engine_errors_total"] == 3.0
    assert daemon.risk.state == TradingState.HALTED


def _synced(daemon, data_dir, recv_ns: int | None = None) -> list[bytes]:
    # Build the daemon's core and sync its book on the first 3,000 depthUpdates of the recording
    # (outside an event loop: nothing is prepared), received at recv_ns (now if None); return those frames.
    from scalper.ingest.binance import Recording, parse_message

    daemon.build_core(1)
    feed = daemon.feed
    feed.sequencer.reset()
    snapshot, frames = None, []
    for line in Recording([data_dir / USDM / FILES[0]]):
        if snapshot is None and b'"lastUpdateId"' in line.raw and b'"stream"' not in line.raw:
            snapshot = line.raw
        elif b"depthUpdate" in line.raw:
            frames.append(line.raw)
        if len(frames) > 3000:
            break
    for raw in frames[:1500]:
        feed._on_frame(raw, recv_ns or time.time_ns())
    feed.place_snapshot(parse_message(snapshot), recv_ns or time.time_ns())
    for raw in frames[1500:]:
        feed._on_frame(raw, recv_ns or time.time_ns())
        feed.flush()
    assert feed.is_synced and daemon.state.is_valid and feed.stats.diffs_applied > 1000
    return frames


def test_a_model_failing_while_preparing_stops_entries_once_until_a_reload(data_dir, eth_models, tmp_path):
    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon
    from scalper.engine.metrics import snapshot
    from scalper.risk.intent import TradingState

    daemon = Daemon(load_config(_daemon_config(tmp_path, eth_models, 0, "file")))
    _synced(daemon, data_dir)
    assert daemon.core.is_idle() and daemon.prepared.prepare_decision() is not None  # a row to prepare
    calls = []

    def broken(_features):
        calls.append(1)
        raise RuntimeError("onnxruntime: bad input")

    daemon.models.predictors[0].predict = broken
    daemon.risk.set_state(TradingState.ACTIVE)  # the sync's decisions could not journal their entries (no writer)
    errors = snapshot(daemon.metrics)["scalper_inference_errors_total"]

    async def frames_arrive(n: int) -> None:
        for _ in range(n):
            daemon._after_events()
            await asyncio.sleep(0)

    asyncio.run(frames_arrive(5))
    assert calls == [1] and snapshot(daemon.metrics)["scalper_inference_errors_total"] == errors + 1
    assert daemon.risk.state == TradingState.REDUCING_ONLY
    assert daemon.reload_models()  # fresh, working models: preparing resumes
    asyncio.run(frames_arrive(1))
    assert daemon.prepared._ready.models is daemon.models
    assert snapshot(daemon.metrics)["scalper_inference_errors_total"] == errors + 1


def test_keep_warm_touches_the_hot_path_and_changes_nothing(data_dir, eth_models, tmp_path):
    import numpy as np

    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon

    daemon = Daemon(load_config(_daemon_config(tmp_path, eth_models, 0, "file")))
    frames = _synced(daemon, data_dir)
    feed = daemon.feed

    state = [a.copy() for a in daemon.state.arrays()]
    ids = feed.sequencer.ids.copy()
    risk = daemon.risk
    risk_before = (dict(risk.reject_counts), risk.approved_count, risk._approvals.copy(), risk.account.equity)
    next_order = daemon.venue.venue.next_order_id
    rounds, rehearsals = [], []
    ahead = daemon.prepared
    warm = ahead.warm_frames
    ahead.warm_frames = lambda: (rounds.append(1), warm())
    rehearse = ahead.rehearse_entry
    ahead.rehearse_entry = lambda p: rehearsals.append(rehearse(p))

    async def run_until_ten_rounds(limit_s: float) -> None:
        # About one round a millisecond; a busy CI core may stall the first ones, so wait for the
        # count rather than for a fixed span.
        task = asyncio.create_task(ahead.keep_warm(daemon.stop_event))
        deadline = time.monotonic() + limit_s
        while len(rounds) < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        daemon.stop_event.set()
        await asyncio.wait_for(task, 1)

    asyncio.run(run_until_ten_rounds(5.0))
    assert len(rounds) >= 10 and len(rehearsals) == len(rounds)
    # The rehearsed entries were sized and checked against the scratch risk manager only.
    assert (dict(risk.reject_counts), risk.approved_count, risk.account.equity) == (
        risk_before[0],
        risk_before[1],
        risk_before[3],
    )
    assert np.array_equal(risk._approvals, risk_before[2]) and daemon.venue.venue.next_order_id == next_order
    for before, after in zip(state, daemon.state.arrays(), strict=True):
        assert np.array_equal(before, after)
    assert np.array_equal(ids, feed.sequencer.ids)
    # The next frame still continues the book: the re-scanned frame was not taken.
    n = feed.stats.diffs_applied
    feed._on_frame(frames[-1], time.time_ns())
    assert feed.stats.diffs_applied == n  # the last frame again: stale, refused
    ahead.keep_warm_ms = 0.0
    daemon.stop_event.clear()
    asyncio.run(asyncio.wait_for(ahead.keep_warm(daemon.stop_event), 0.1))  # off: returns at once


def test_the_daemon_composes_the_latency_component_only_when_the_config_asks(eth_models, tmp_path):
    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon

    for prepare, keep_warm_ms in ((True, 1.0), (True, 0.0), (False, 1.0), (False, 0.0)):
        where = tmp_path / f"{prepare}-{keep_warm_ms}"
        where.mkdir()
        cfg = load_config(_daemon_config(where, eth_models, 0, "file"))
        update = {"prepare_decisions": prepare, "keep_warm_ms": keep_warm_ms}
        daemon = Daemon(cfg.model_copy(update={"daemon": cfg.daemon.model_copy(update=update)}))
        daemon.build_core(1)
        ahead = daemon.prepared
        if not prepare and keep_warm_ms == 0.0:  # neither: no component, the core predicts every decision
            assert ahead is None and daemon.core.signal == daemon.core.predict
            continue
        assert ahead is not None and ahead.keep_warm_ms == keep_warm_ms and ahead.frames is daemon.frames
        # Only a preparing component answers the core's decisions (and is scheduled after events).
        wrapped = daemon.core.signal == ahead.signal
        assert wrapped == prepare and (daemon._after_events == ahead.after_events) == prepare
        assert wrapped or daemon.core.signal == daemon.core.predict


def test_decisions_prepared_between_frames_trade_exactly_as_predicted_ones(data_dir, eth_models, tmp_path):
    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon
    from scalper.features.kernels import I_DECISIONS
    from scalper.ingest.binance import Recording, parse_message

    snapshot, buffered, frames = None, [], []
    for line in Recording([data_dir / USDM / FILES[0]]):
        if snapshot is None and b'"lastUpdateId"' in line.raw and b'"stream"' not in line.raw:
            snapshot = line.raw
        elif b"depthUpdate" in line.raw:
            (buffered if snapshot is None else frames).append(line.raw)

    async def trade(prepare: bool, name: str):
        (tmp_path / name).mkdir()
        cfg = load_config(_daemon_config(tmp_path / name, eth_models, 0, "file"))
        # Wide exits and a probability floor: many flat decisions, most refused, some entered.
        cfg = cfg.model_copy(
            update={
                "daemon": cfg.daemon.model_copy(update={"prepare_decisions": prepare}),
                "risk": cfg.risk.model_copy(
                    update={"take_profit_bps": 30.0, "stop_loss_bps": 10.0, "min_probability": 0.6}
                ),
            }
        )
        daemon = Daemon(cfg)
        await daemon.journal.start()
        daemon.build_core(1)
        feed = daemon.feed
        feed.sequencer.reset()
        for raw in buffered:
            feed._on_frame(raw, time.time_ns())
        feed.place_snapshot(parse_message(snapshot), time.time_ns())
        for raw in frames:
            feed._on_frame(raw, time.time_ns())
            feed.flush()
            if daemon.journal.backlog:
                await daemon.journal.flush()
            await asyncio.sleep(0)  # the loop's turn between frames: where a decision is prepared
        await daemon.journal.close()
        risk, acc = daemon.risk, daemon.risk.account
        outcome = (
            risk.approved_count,
            dict(risk.reject_counts),
            acc.position,
            acc.realized_pnl,
            acc.fees_paid,
            int(daemon.state.ist[I_DECISIONS]),
            daemon.venue.venue.next_order_id,
        )
        return (
            outcome,
            daemon.prepared.hits,
            (tmp_path / name / "journal.jsonl").read_text().count('"type":"fill"'),
        )

    on, hits, fills_on = asyncio.run(trade(True, "on"))
    off, no_hits, fills_off = asyncio.run(trade(False, "off"))
    assert on == off and fills_on == fills_off
    assert on[0] > 5 and fills_on > 5  # entries were approved and filled
    flat_decisions = on[0] + sum(on[1].values())
    assert hits > 0.8 * flat_decisions > 100 and no_hits == 0


def _redis_daemon(tmp_path, models, redis_url):
    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon

    daemon = Daemon(load_config(_daemon_config(tmp_path, models, 0, "redis", redis_url)))
    daemon.build_core(1)
    return daemon


def _poll_key(daemon, value: str | None, polls: int) -> list:
    # The housekeeping's key poll, ``polls`` times, with the key at ``value``; the state after each poll.
    import redis.asyncio as aioredis

    async def run():
        client = aioredis.from_url(daemon.cfg.daemon.redis_url)
        if value is None:
            await client.delete(daemon.cfg.daemon.halt_key)
        else:
            await client.set(daemon.cfg.daemon.halt_key, value)
        seen = []
        for _ in range(polls):
            await daemon._poll_halt_key(client)
            seen.append(daemon.risk.state)
        await client.aclose()
        return seen

    return asyncio.run(run())


def test_the_halt_key_at_active_never_undoes_an_operator_signal(eth_models, tmp_path, redis_server):
    from scalper.risk.intent import TradingState

    daemon = _redis_daemon(tmp_path, eth_models, redis_server)
    assert _poll_key(daemon, "active", 1) == [TradingState.ACTIVE]
    daemon.on_operator_signal(TradingState.HALTED)  # SIGUSR1
    assert _poll_key(daemon, "active", 3) == [TradingState.HALTED] * 3
    daemon.on_operator_signal(TradingState.REDUCING_ONLY)  # SIGUSR2 after SIGUSR1: the halt stays
    assert _poll_key(daemon, "active", 3) == [TradingState.HALTED] * 3
    # The key may still make it safer, and its own slot follows it.
    daemon.risk.set_state(TradingState.ACTIVE)
    assert _poll_key(daemon, "reducing_only", 2) == [TradingState.REDUCING_ONLY] * 2
    assert _poll_key(daemon, None, 1) == [TradingState.ACTIVE]


def test_the_halt_key_never_undoes_the_drawdown_or_inference_latch(eth_models, tmp_path, redis_server):
    import numpy as np

    from scalper.risk.intent import TradingState

    daemon = _redis_daemon(tmp_path, eth_models, redis_server)

    def broken(_features):
        raise RuntimeError("onnxruntime: bad input")

    daemon.models.predictors[0].predict = broken
    daemon._decide(1, np.zeros(15), time.time_ns())
    assert daemon.risk.state == TradingState.REDUCING_ONLY
    assert _poll_key(daemon, "active", 3) == [TradingState.REDUCING_ONLY] * 3

    (tmp_path / "dd").mkdir()
    other = _redis_daemon(tmp_path / "dd", eth_models, redis_server)
    risk = other.risk
    risk.on_fill(1, (other.cfg.risk.max_drawdown + 100.0) / 1000.0, 3000.0, 0.0)
    risk.mark(2000.0)  # a loss beyond max_drawdown: the kill switch trips
    assert risk.state == TradingState.REDUCING_ONLY
    assert _poll_key(other, "active", 3) == [TradingState.REDUCING_ONLY] * 3


def _file_daemon(tmp_path, models):
    from scalper.engine.config import load_config
    from scalper.engine.daemon import Daemon

    return Daemon(load_config(_daemon_config(tmp_path, models, 0, "file")))


def _approved(daemon, side: int, qty: float, is_exit: bool):
    # An order through the daemon's own risk manager (only it makes ApprovedOrder).
    from scalper.risk.intent import ApprovedOrder, OrderIntent
    from scalper.risk.market import MarketState

    now = time.time_ns()
    intent = OrderIntent(now, side, qty, 3000.0 if side > 0 else 2999.0, is_exit, "stop_loss" if is_exit else "entry")
    approved = daemon.risk.check(intent, MarketState(now, 2999.99, 3000.0, 1, now, True))
    assert isinstance(approved, ApprovedOrder), approved
    return approved


def test_journal_ts_ns_is_the_wall_clock_for_intents_like_every_other_record(eth_models, tmp_path):
    from scalper.exec.journal import IntentRecord

    daemon = _file_daemon(tmp_path, eth_models)
    event_ts = 1_721_260_800_000_000_000  # an exchange event time of the recording (2024-07-18)

    async def scenario():
        await daemon.journal.start()
        daemon.build_core(1)
        t0 = time.time_ns()
        daemon.venue.submit(_approved(daemon, 1, 0.01, False), event_ts)
        t1 = time.time_ns()
        await daemon.journal.close()
        return t0, t1

    t0, t1 = asyncio.run(scenario())
    entries = asyncio.run(_read(FileJournal(tmp_path / "journal.jsonl")))
    intents = [e.record for e in entries if isinstance(e.record, IntentRecord)]
    assert len(intents) == 1 and t0 <= intents[0].ts_ns <= t1


class _StalledStore:
    """Wraps a backend so that appends hang (a Redis that stopped answering) until released."""

    def __init__(self, backend):
        self.backend = backend
        self.open = asyncio.Event()

    def install(self):
        real = self.backend.append

        async def append(entries):
            await self.open.wait()
            await real(entries)

        self.backend.append = append


def test_an_exit_goes_out_while_the_store_hangs_and_an_entry_waits(eth_models, tmp_path):
    daemon = _file_daemon(tmp_path, eth_models)

    async def scenario():
        await daemon.journal.start()
        daemon.build_core(1)
        daemon.risk.on_fill(1, 0.02, 3000.0, 0.0)  # a position to exit
        stall = _StalledStore(daemon.journal.backend)
        stall.install()
        exit_order = daemon.venue.submit(_approved(daemon, -1, 0.02, True), time.time_ns())
        entry_order = daemon.venue.submit(_approved(daemon, 1, 0.01, False), time.time_ns())
        await asyncio.sleep(0.05)
        sent_exit = daemon.venue.release(time.time_ns())
        on_venue = [o.order_id for o in daemon.venue.venue.open_orders()]
        stall.open.set()
        await daemon.journal.flush()
        sent_entry = daemon.venue.release(time.time_ns())
        await daemon.journal.close()
        return exit_order.order_id, entry_order.order_id, sent_exit, on_venue, sent_entry

    exit_id, entry_id, sent_exit, on_venue, sent_entry = asyncio.run(scenario())
    assert sent_exit == 1 and on_venue == [exit_id]  # the exit is not held for the store; the entry is
    assert sent_entry == 1 and entry_id == exit_id + 1


def test_journal_reducing_only_clears_itself_once_drained_and_the_other_latches_stay(eth_models, tmp_path):
    from scalper.risk.control import Source
    from scalper.risk.intent import TradingState

    daemon = _file_daemon(tmp_path, eth_models)
    seen = []

    async def scenario():
        await daemon.journal.start()
        daemon.build_core(1)
        backend = daemon.journal.backend
        real_append = backend.append
        down = True

        async def append(entries):
            if down:
                raise OSError("disk gone")
            await real_append(entries)

        backend.append = append
        daemon.on_operator_signal(TradingState.REDUCING_ONLY)  # queued; the store refuses it
        t0 = time.monotonic()
        while daemon.journal.is_writable and time.monotonic() - t0 < 3:
            await asyncio.sleep(0.01)
        seen.append(("failing", daemon.risk.control.slot(Source.JOURNAL), daemon.risk.state))
        down = False
        await daemon.journal.flush()
        daemon._journal_guard()  # the housekeeping's once-a-second call
        seen.append(("drained", daemon.risk.control.slot(Source.JOURNAL), daemon.risk.state))
        await daemon.journal.close()

    asyncio.run(scenario())
    assert seen == [
        ("failing", TradingState.REDUCING_ONLY, TradingState.REDUCING_ONLY),
        ("drained", TradingState.ACTIVE, TradingState.REDUCING_ONLY),  # the operator's signal stays
    ]
    assert snapshot_value(daemon, "scalper_journal_writable") == 1.0


def snapshot_value(daemon, name: str) -> float:
    from scalper.engine.metrics import snapshot

    return snapshot(daemon.metrics)[name]


def test_resume_command_is_journaled_and_a_restart_keeps_an_unresumed_halt(eth_models, tmp_path):
    from scalper.engine.control import FileControlChannel, command
    from scalper.exec.journal import OperatorAction, OperatorRecord
    from scalper.risk.intent import TradingState

    async def session(signal_state, resume):
        daemon = _file_daemon(tmp_path, eth_models)
        await daemon.journal.start()
        first = await daemon._recover()
        daemon.build_core(first)
        restored = daemon.risk.state
        if signal_state is not None:
            daemon.on_operator_signal(signal_state)
        if resume:
            FileControlChannel(daemon.cfg.daemon.control_dir).send(command(TradingState.ACTIVE, "drawdown reviewed"))
            await daemon._poll_control(None)
        state = daemon.risk.state
        await daemon.journal.close()
        return restored, state

    assert asyncio.run(session(TradingState.HALTED, False)) == (TradingState.ACTIVE, TradingState.HALTED)
    assert asyncio.run(session(None, False)) == (TradingState.HALTED, TradingState.HALTED)  # restart: still halted
    assert asyncio.run(session(None, True)) == (TradingState.HALTED, TradingState.ACTIVE)
    assert asyncio.run(session(None, False)) == (TradingState.ACTIVE, TradingState.ACTIVE)
    ops = [
        e.record
        for e in asyncio.run(_read(FileJournal(tmp_path / "journal.jsonl")))
        if isinstance(e.record, OperatorRecord)
    ]
    assert [(r.action, r.state) for r in ops] == [
        (OperatorAction.TIGHTEN, TradingState.HALTED),
        (OperatorAction.SET, TradingState.ACTIVE),
    ]
    assert ops[1].reason.startswith("drawdown reviewed (") and "via file" in ops[1].reason


def test_run_with_a_contradicting_journal_gives_one_error_line_and_exit_2(eth_models, tmp_path):
    from typer.testing import CliRunner

    from scalper.engine.cli import app
    from scalper.exec.journal import FillRecord, JournalEntry, PositionRecord, encode

    records = [
        IntentRecord(1, 1, -1, 0.05, 3000.0, "entry", False),
        FillRecord(2, 1, 2, -1, 0.05, 3000.0, 0.0, False, "entry"),
        PositionRecord(3, 0.0, 0.0, 0.0, 0.0),  # says flat; the fill before it gives -0.05
    ]
    (tmp_path / "journal.jsonl").write_bytes(
        b"".join(encode(JournalEntry(i + 1, r)) + b"\n" for i, r in enumerate(records))
    )
    cfg = _daemon_config(tmp_path, eth_models, 0, "file")
    res = CliRunner().invoke(app, ["run", "-c", str(cfg)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "position record says position=0.0, the fills before it give -0.05" in lines[0]
    assert "restore it" in lines[0] and "Traceback" not in res.output


def test_preparing_a_decision_times_its_inference(data_dir, eth_models, tmp_path):
    daemon = _file_daemon(tmp_path, eth_models)
    frames = _synced(daemon, data_dir)
    before = snapshot_value(daemon, "scalper_inference_seconds_count")
    prepared = []
    prepare = daemon.prepared.prepare_decision
    daemon.prepared.prepare_decision = lambda: prepared.append(prepare()) or prepared[-1]

    async def frames_arrive(n: int) -> None:
        for raw in frames[-n:]:
            daemon.feed._on_frame(raw, time.time_ns())  # stale frames: only the idle-time preparation runs
            daemon._after_events()
            await asyncio.sleep(0)

    asyncio.run(frames_arrive(5))
    asked = sum(p is not None for p in prepared)
    assert asked >= 1
    assert snapshot_value(daemon, "scalper_inference_seconds_count") == before + asked


def test_book_age_is_measured_from_the_receive_time_not_the_exchange_clock(data_dir, eth_models, tmp_path):
    daemon = _file_daemon(tmp_path, eth_models)
    _synced(daemon, data_dir, recv_ns=time.time_ns() - 2_000_000_000)  # received 2 s ago; event times of 2024
    daemon._export_gauges()
    assert 2.0 <= snapshot_value(daemon, "scalper_book_age_seconds") < 5.0


def test_resume_through_redis_releases_the_latches_but_not_the_key(eth_models, tmp_path, redis_server):
    from typer.testing import CliRunner

    from scalper.engine.cli import app
    from scalper.exec.journal import OperatorAction, OperatorRecord
    from scalper.risk.intent import TradingState

    cfg = _daemon_config(tmp_path, eth_models, 0, "redis", redis_server)
    daemon = _redis_daemon(tmp_path, eth_models, redis_server)

    async def scenario():
        await daemon._start_journal()
        client = daemon._redis_client()
        daemon.on_operator_signal(TradingState.HALTED)
        daemon._inference_failed("in a test")
        await client.set(daemon.cfg.daemon.halt_key, "reducing_only")
        await daemon._poll_halt_key(client)
        res = await asyncio.to_thread(
            CliRunner().invoke, app, ["control", "resume", "-c", str(cfg), "--reason", "checked"]
        )
        assert res.exit_code == 0 and "via redis list test:halt:control" in res.output, res.output
        before = daemon.risk.state
        await daemon._poll_control(client)
        after_resume = daemon.risk.state
        await client.delete(daemon.cfg.daemon.halt_key)
        await daemon._poll_halt_key(client)
        await client.aclose()
        await daemon.journal.close()
        await daemon.journal.backend.close()
        return before, after_resume, daemon.risk.state

    assert asyncio.run(scenario()) == (TradingState.HALTED, TradingState.REDUCING_ONLY, TradingState.ACTIVE)
    ops = [
        e.record
        for e in asyncio.run(_read(RedisJournal(redis_server, "test:journal")))
        if isinstance(e.record, OperatorRecord)
    ]
    assert [(r.action, r.state) for r in ops] == [
        (OperatorAction.TIGHTEN, TradingState.HALTED),
        (OperatorAction.SET, TradingState.ACTIVE),
    ]
    assert "checked (" in ops[1].reason and "via redis list test:halt:control" in ops[1].reason


def test_wrap_steps_routes_every_decision_and_preparation_through_the_wrappers(data_dir, eth_models, tmp_path):
    # The bench's public hook: wrappers see each step's arguments, compose (the last installed is
    # outermost) and the daemon's own step still runs once per call.
    daemon = _file_daemon(tmp_path, eth_models)
    seen: list[tuple] = []

    def tag(name):
        def wrap(step):
            def wrapped(*args):
                seen.append((name, *args))
                step(*args)

            return wrapped

        return wrap

    daemon.wrap_steps(decide=tag("inner"), prepare=tag("prep"))
    daemon.wrap_steps(decide=tag("outer"))
    recv = time.time_ns() - 1_000
    frames = _synced(daemon, data_dir, recv_ns=recv)
    decisions = [s for s in seen if s[0] in ("inner", "outer")]
    assert len(decisions) >= 2 and [s[0] for s in decisions[:2]] == ["outer", "inner"]
    outer = [s for s in decisions if s[0] == "outer"]
    assert [s[1:] for s in outer] == [s[1:] for s in decisions if s[0] == "inner"]
    assert all(feat is daemon.state.feat and ts == recv for _, _, feat, ts in outer)
    grid = [g for _, g, _, _ in outer]
    assert grid == sorted(grid) and len(set(grid)) == len(grid)
    assert snapshot_value(daemon, "scalper_decisions_total") == len(outer)  # the daemon's step ran for each
    assert not [s for s in seen if s[0] == "prep"]  # outside an event loop nothing is prepared

    async def frames_arrive(n: int) -> None:
        for raw in frames[-n:]:
            daemon.feed._on_frame(raw, time.time_ns())  # stale frames: only the idle-time preparation runs
            daemon._after_events()
            await asyncio.sleep(0)

    asyncio.run(frames_arrive(3))
    prepared = [s for s in seen if s[0] == "prep"]
    assert 1 <= len(prepared) <= 3 and set(prepared) == {("prep",)}  # at most one per frame, no arguments
