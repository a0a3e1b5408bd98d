"""OnnxPredictor.predict calls ONNX Runtime's private C binding (``InferenceSession._sess``,
``IOBinding._iobinding``) to skip the public wrapper's per-call bookkeeping (models/inference.py).

pyproject.toml pins onnxruntime to the minor versions these tests passed on. An upgrade that removes the
attributes, renames the call or changes what it writes fails here, naming the version, instead of
silently running the slower public path (or worse, the wrong one) in production.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pytest

from scalper.features.registry import FEATURE_NAMES, FEATURE_SET_VERSION
from scalper.models.card import ModelCard
from scalper.models.inference import OnnxPredictor
from scalper.models.labels import CLASS_NAMES
from scalper.models.onnx_export import INPUT_NAME, PROBABILITIES, save_onnx, to_onnx

N_FEATURES = len(FEATURE_NAMES)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> OnnxPredictor:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(900, N_FEATURES))
    y = (X[:, 0] > 0.3).astype(int) + (X[:, 1] > -0.3)  # three classes, all present
    model = lgb.LGBMClassifier(n_estimators=15, verbose=-1, n_jobs=1, random_state=7).fit(X, y)
    root = tmp_path_factory.mktemp("binding")
    save_onnx(to_onnx(model, N_FEATURES), root / "h10s.onnx")
    ModelCard(
        model_file="h10s.onnx",
        horizon_s=10.0,
        classes=list(CLASS_NAMES),
        feature_set_version=FEATURE_SET_VERSION,
        feature_names=list(FEATURE_NAMES),
        input_name=INPUT_NAME,
        probabilities_output=PROBABILITIES,
        dead_zone_ticks=0.0,
        decision_grid_ms=100.0,
        instrument={"venue": "TEST", "symbol": "TST", "tick_size": 0.01},
        data_file="none",
        data_sha256="0" * 64,
        train_span_ns=(0, 1),
        val_span_ns=(1, 2),
        test_span_ns=(2, 3),
        embargo_s=0.0,
        n_trees=15,
        params={},
        versions={},
        parity_max_abs_diff=0.0,
        metrics={},
    ).save(root / "h10s.card.json")
    return OnnxPredictor(root / "h10s.onnx")


def test_the_private_c_binding_is_there(predictor):
    session, binding = predictor.session, predictor.session.io_binding()
    missing = [name for obj, name in ((session, "_sess"), (binding, "_iobinding")) if not hasattr(obj, name)]
    assert missing == [], (
        f"onnxruntime {ort.__version__} has no {missing}: OnnxPredictor.predict falls back to the slower public "
        "run_with_iobinding; re-measure (BENCHMARKS.md) and update models/inference.py and the pin in pyproject.toml"
    )
    assert callable(getattr(session._sess, "run_with_iobinding", None)), (
        f"onnxruntime {ort.__version__}: InferenceSession._sess.run_with_iobinding is gone"
    )
    assert predictor.uses_c_binding
    assert predictor._run.func == session._sess.run_with_iobinding


def test_the_c_binding_writes_the_same_probabilities_as_the_public_api(predictor):
    # The call must still run the graph on the bound input and write into the bound output buffer,
    # row after row (a binding that stopped updating the buffer would repeat the first answer).
    rows = np.random.default_rng(8).normal(size=(50, N_FEATURES))
    expected = predictor.session.run([PROBABILITIES], {INPUT_NAME: rows.astype(np.float32)})[0]
    got = np.array([predictor.predict(row).copy() for row in rows])
    np.testing.assert_array_equal(got, expected)
    assert len({tuple(r) for r in got}) > 1, "every row got the same answer: the binding is not re-read"


def test_the_output_is_the_preallocated_buffer(predictor):
    # predict() returns a view of the buffer bound at construction: the C call writes there, allocates nothing.
    out = predictor.predict(np.zeros(N_FEATURES))
    assert np.shares_memory(out, predictor.proba)
