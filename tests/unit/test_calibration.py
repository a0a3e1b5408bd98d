import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from scalper.models.calibration import MIN_PROBABILITY, fit_isotonic, fit_temperature
from scalper.models.onnx_export import INPUT_NAME, PROBABILITIES, ParityError, parity_check, to_onnx


def _data(seed, n=4000):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(int) + (X[:, 1] + rng.normal(size=n) > 1)
    return X, y


def _fitted(seed=0):
    X, y = _data(seed)
    m = lgb.LGBMClassifier(n_estimators=60, verbose=-1, n_jobs=1, random_state=seed).fit(
        X[:2000].astype(float), y[:2000]
    )
    return m, X, y


def test_isotonic_map_is_monotone_reaches_its_fitted_values_and_sums_to_one():
    p = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    y = np.array([0, 1, 2, 2])
    cal = fit_isotonic(p, y)
    out = cal.apply(p)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    assert (out >= MIN_PROBABILITY / 2).all()
    grid = np.linspace(0, 1, 101)
    up = cal.apply(np.stack([1 - grid, np.zeros_like(grid), grid], axis=1))
    raw_up = (cal.slopes[2] * np.clip(grid[:, None] - cal.knots[2], 0, cal.widths[2])).sum(axis=1) + cal.base[2]
    assert (np.diff(raw_up) >= -1e-7).all()
    assert up.shape == (101, 3)


def test_calibration_improves_the_log_loss_of_an_overconfident_model():
    from sklearn.metrics import log_loss

    m, X, y = _fitted()
    p_cal = m.predict_proba(X[2000:3000].astype(float))
    cal = fit_isotonic(p_cal, y[2000:3000])
    p_test = m.predict_proba(X[3000:].astype(float))
    assert log_loss(y[3000:], cal.apply(p_test), labels=[0, 1, 2]) < log_loss(y[3000:], p_test, labels=[0, 1, 2])


def test_calibrated_graph_matches_python_within_1e_5_and_keeps_the_engine_outputs():
    m, X, y = _fitted()
    cal = fit_isotonic(m.predict_proba(X[2000:3000].astype(float)), y[2000:3000])
    onx = to_onnx(m, 4, cal)
    assert parity_check(m, onx, X, calibration=cal) <= 1e-5
    graph = onnx.load_from_string(onx).graph
    assert {o.name for o in graph.output} == {"label", PROBABILITIES}
    sess = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    label, proba = sess.run(["label", PROBABILITIES], {INPUT_NAME: X})
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.array_equal(label, proba.argmax(axis=1))
    # End to end too: knots at quantiles keep the map's slopes moderate, so the trees' float32 rounding
    # is not magnified past the tolerance.
    assert np.abs(proba - cal.apply(m.predict_proba(X.astype(float)))).max() <= 1e-5


def test_parity_check_refuses_a_graph_with_another_calibration():
    m, X, y = _fitted()
    cal = fit_isotonic(m.predict_proba(X[2000:3000].astype(float)), y[2000:3000])
    other = fit_isotonic(m.predict_proba(X[3000:].astype(float)), (y[3000:] + 1) % 3)
    with pytest.raises(ParityError, match="model not saved"):
        parity_check(m, to_onnx(m, 4, other), X, calibration=cal)


def test_fit_isotonic_refuses_bad_input():
    with pytest.raises(ValueError, match="need proba"):
        fit_isotonic(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="labels must lie"):
        fit_isotonic(np.full((2, 3), 1 / 3), np.array([0, 3]))
    with pytest.raises(ValueError, match="max_knots"):
        fit_isotonic(np.full((2, 3), 1 / 3), np.array([0, 1]), max_knots=1)


def test_temperature_scaling_softens_an_overconfident_model_and_keeps_its_ranking():
    rng = np.random.default_rng(5)
    n = 5000
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), y] += 1.0
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in true])
    sharp = true**3 / (true**3).sum(axis=1, keepdims=True)  # the truth raised to 1 / T with T = 1/3
    cal = fit_temperature(sharp, y)
    assert cal.temperature == pytest.approx(3.0, rel=0.1)
    out = cal.apply(sharp)
    np.testing.assert_allclose(out, true, atol=0.05)
    assert np.array_equal(out.argmax(axis=1), sharp.argmax(axis=1))
    assert cal.summary() == {"method": "temperature", "temperature": cal.temperature}


def test_temperature_is_folded_into_the_trees_and_matches_python_within_1e_5():
    m, X, y = _fitted()
    cal = fit_temperature(m.predict_proba(X[2000:3000].astype(float)), y[2000:3000])
    assert abs(cal.temperature - 1.0) > 0.05  # an overfitted model: the test must see a real change
    onx = to_onnx(m, 4, cal)
    assert [n.op_type for n in onnx.load_from_string(onx).graph.node] == ["TreeEnsembleClassifier"]
    assert parity_check(m, onx, X, calibration=cal) <= 1e-5
    sess = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    label, proba = sess.run(["label", PROBABILITIES], {INPUT_NAME: X})
    assert np.abs(proba - cal.apply(m.predict_proba(X.astype(float)))).max() <= 1e-5
    assert np.array_equal(label, proba.argmax(axis=1))
