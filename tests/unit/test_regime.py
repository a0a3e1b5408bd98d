"""Regime gate: thresholds from training rows only, the graph's choice at, below and above each threshold, parity."""

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.models.calibration import fit_isotonic, fit_temperature
from scalper.models.onnx_export import INPUT_NAME, PROBABILITIES, parity_check, to_onnx_gated
from scalper.models.regime import (
    GatedModel,
    assign_regimes,
    gated_graph,
    regime_column,
    regime_thresholds,
)

N_FEATURES = 4
COL = 2


def _model(seed: int, shift: float) -> lgb.LGBMClassifier:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, N_FEATURES))
    y = ((X[:, 0] + shift > 0.5).astype(int) + (X[:, 1] > 0).astype(int)).clip(0, 2)
    return lgb.LGBMClassifier(n_estimators=15, num_leaves=7, random_state=seed, verbose=-1).fit(X, y)


@pytest.fixture(scope="module")
def three():
    # Three regimes whose models differ a lot, and a pooled model unlike any of them.
    return GatedModel(
        COL, np.array([-0.5, 0.75], np.float32), (_model(1, -1.0), _model(2, 0.0), _model(3, 1.0)), _model(4, 0.3)
    )


def _onnx_proba(onnx_bytes: bytes, X: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return sess.run([PROBABILITIES], {INPUT_NAME: X.astype(np.float32)})[0]


def test_regime_column_prefers_the_session_relative_regime():
    assert regime_column(["a", "realized_vol_30s_bps", "vol_regime_30s"]) == 2
    assert regime_column(["realized_vol_30s_bps", "b"]) == 0
    with pytest.raises(ValueError, match="regime gate needs"):
        regime_column(["a", "b"])


def test_thresholds_are_training_quantiles_in_float32():
    x = np.arange(100, dtype=np.float64)
    t = regime_thresholds(x, 2)
    assert t.dtype == np.float32 and t.tolist() == [49.5]
    assert regime_thresholds(np.r_[x, np.nan], 3).tolist() == pytest.approx([33.0, 66.0])
    with pytest.raises(ValueError, match="leave a regime empty"):
        regime_thresholds(np.zeros(50), 2)
    with pytest.raises(ValueError, match="no finite"):
        regime_thresholds(np.full(5, np.nan), 2)
    with pytest.raises(ValueError, match="bins"):
        regime_thresholds(x, 1)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=4, max_size=60), st.sampled_from([2, 3]))
@settings(max_examples=60, deadline=None)
def test_assignment_counts_thresholds_at_or_below(xs, bins):
    x = np.asarray(xs, dtype=np.float32)
    try:
        t = regime_thresholds(x, bins)
    except ValueError:
        return  # too few distinct values: refused, tested above
    k = assign_regimes(x, t)
    assert ((k >= 0) & (k < bins)).all()
    for i, v in enumerate(x):
        assert k[i] == int((v >= t).sum())


def test_graph_picks_the_regime_model_at_below_and_above_each_threshold(three):
    onnx_bytes = to_onnx_gated(three, N_FEATURES)
    base = np.random.default_rng(5).normal(size=(1, N_FEATURES)).astype(np.float32)
    t0, t1 = (float(v) for v in three.thresholds)
    below = float(np.nextafter(np.float32(t0), np.float32(-np.inf)))
    cases = {
        -3.0: 0,
        below: 0,
        t0: 1,
        0.0: 1,
        float(np.nextafter(np.float32(t1), np.float32(-np.inf))): 1,
        t1: 2,
        5.0: 2,
        float("nan"): None,
    }
    for value, regime in cases.items():
        x = base.copy()
        x[0, COL] = value
        got = _onnx_proba(onnx_bytes, x)[0]
        model = three.pooled if regime is None else three.models[regime]
        want = model.predict_proba(x.astype(np.float64))[0]
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"regime feature {value}")
        others = [m for m in (*three.models, three.pooled) if m is not model]
        assert all(np.abs(m.predict_proba(x.astype(np.float64))[0] - want).max() > 1e-4 for m in others)


@pytest.mark.parametrize("calibration", [None, "temperature", "isotonic"])
def test_gated_graph_parity_with_the_numpy_choice(three, calibration):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(2_000, N_FEATURES)).astype(np.float32)
    X[::97, COL] = np.nan
    y = rng.integers(0, 3, size=len(X))
    cal = None
    if calibration is not None:
        fit = fit_temperature if calibration == "temperature" else fit_isotonic
        cal = fit(three.predict_proba(X.astype(np.float64)), y)
    onnx_bytes = to_onnx_gated(three, N_FEATURES, cal)
    assert parity_check(three, onnx_bytes, X, calibration=cal) <= 1e-5
    k = three.regimes(X)
    assert set(np.unique(k)) == {-1, 0, 1, 2}


def test_a_fallen_back_regime_is_served_by_the_pooled_model(three):
    gated = GatedModel(COL, three.thresholds, (three.models[0], None, three.models[2]), three.pooled)
    X = np.random.default_rng(2).normal(size=(500, N_FEATURES)).astype(np.float32)
    onnx_bytes = to_onnx_gated(gated, N_FEATURES)
    assert parity_check(gated, onnx_bytes, X) <= 1e-5
    mid = gated.regimes(X) == 1
    np.testing.assert_allclose(gated.predict_proba(X[mid]), three.pooled.predict_proba(X[mid]))


def test_graph_refuses_a_threshold_count_mismatch(three):
    with pytest.raises(ValueError, match="need one more"):
        gated_graph([None], b"", COL, three.thresholds, "p", "l")
