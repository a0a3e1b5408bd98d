"""The signal rule (engine/core.py ``select_signal``): one compiled rule for one decision and for a batch,
equal to the rule written in plain Python (the one-row loop the engine ran before it was compiled)."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scalper.engine.core import EngineCore, choose_signals, select_one_signal
from scalper.exec.simulated import SimulatedExchange
from scalper.features.kernels import FeatureState
from scalper.ingest.tickfile import Instrument
from scalper.models.inference import ModelSet
from scalper.models.labels import DOWN, UP
from scalper.risk.config import RiskConfig
from scalper.risk.limits import RiskManager

# Few distinct values, so ties (within a horizon and across horizons) are frequent.
PROB = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), st.floats(0.0, 1.0, width=32))
ROW = st.lists(PROB, min_size=3, max_size=3)


def oracle(rows: list[list[float]], horizons: list[int]) -> tuple[float, int, int, list[int]]:
    """Argmax class per horizon (first maximum); the most confident call, horizon by horizon, up before
    down, the first maximum winning; always up or down."""
    best_p, best_side, best_h = -1.0, 0, 0
    classes = []
    for proba, horizon in zip(rows, horizons, strict=True):
        classes.append(proba.index(max(proba)))
        for cls, side in ((UP, 1), (DOWN, -1)):
            if proba[cls] > best_p:
                best_p, best_side, best_h = proba[cls], side, horizon
    return best_p, best_side, best_h, classes


def _f32(rows):
    return np.array(rows, dtype=np.float32)


@given(rows=st.lists(ROW, min_size=1, max_size=4))
def test_one_decision_equals_the_plain_python_rule(rows):
    horizons = [5_000_000_000 * (h + 1) for h in range(len(rows))]
    proba = _f32(rows)
    classes = np.full(len(rows), -1, dtype=np.int8)
    p, side, horizon = select_one_signal(proba, np.array(horizons, dtype=np.int64), classes)
    want = oracle(proba.tolist(), horizons)  # float32 values, as the models answer them
    assert (p, side, horizon, classes.tolist()) == want
    assert type(p) is float and side in (1, -1)


@given(batch=st.integers(1, 4).flatmap(lambda h: st.lists(st.lists(ROW, min_size=h, max_size=h), max_size=20)))
def test_a_batch_equals_the_rule_row_by_row(batch):
    h = len(batch[0]) if batch else 2
    horizons = tuple(1_000_000_000 * (k + 1) for k in range(h))
    probas = [_f32([row[k] for row in batch]).reshape(len(batch), 3) for k in range(h)]
    classes, p, side, horizon = choose_signals(probas, horizons)
    assert classes.dtype == np.int8 and p.dtype == np.float64 and side.dtype == np.int8 and horizon.dtype == np.int64
    assert classes.shape == (len(batch), h)
    for m, rows in enumerate(batch):
        want = oracle(_f32(rows).tolist(), list(horizons))
        assert (float(p[m]), int(side[m]), int(horizon[m]), classes[m].tolist()) == want


class _Fixed:
    def __init__(self, proba, horizon_s):
        self.proba = np.array(proba, dtype=np.float32)
        self.horizon_ns = int(horizon_s * 1e9)
        self.card = SimpleNamespace(dead_zone_ticks=0.0, horizon_s=horizon_s)

    def predict(self, features):
        return self.proba


def test_the_core_predicts_with_the_rule_and_follows_a_model_swap():
    cfg = RiskConfig()
    core = EngineCore(
        Instrument("TEST", "X", 0.01, 1.0, "test"),
        FeatureState(),
        ModelSet(Path("."), (_Fixed([0.2, 0.1, 0.7], 5.0), _Fixed([0.8, 0.1, 0.1], 10.0))),
        RiskManager(cfg, 0.01, 1.0, 0.0),
        SimulatedExchange(1_000_000, 0.0, 0.01, 1.0),
        1.0,
        10.0,
        10.0,
    )
    p, side, horizon, classes, _ = core.predict(core.state.feat)
    assert (p, side, horizon, classes.tolist()) == (np.float32(0.8).item(), -1, 10_000_000_000, [2, 0])
    core.models = ModelSet(
        Path("."), (_Fixed([0.3, 0.4, 0.3], 5.0), _Fixed([0.1, 0.3, 0.6], 10.0), _Fixed([0.0, 0.1, 0.9], 30.0))
    )
    p, side, horizon, classes, _ = core.predict(core.state.feat)
    assert (p, side, horizon, classes.tolist()) == (np.float32(0.9).item(), 1, 30_000_000_000, [1, 2, 2])
