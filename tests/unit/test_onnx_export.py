import lightgbm as lgb
import numpy as np
import pytest

from scalper.models import train as train_module
from scalper.models.onnx_export import ParityError, parity_check, to_onnx


def _model(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1)
    m = lgb.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1, random_state=seed).fit(X.astype(np.float64), y)
    return m, X


def test_exported_model_matches_lightgbm_within_tolerance():
    m, X = _model(0)
    assert parity_check(m, to_onnx(m, 4), X) <= 1e-5


def test_parity_check_refuses_a_graph_that_disagrees():
    m, X = _model(0)
    other, _ = _model(1)
    with pytest.raises(ParityError, match="model not saved"):
        parity_check(m, to_onnx(other, 4), X)


def test_failed_parity_writes_no_model(tmp_path, monkeypatch):
    from builders import random_walk_ticks

    from scalper.features.config import FeaturesConfig
    from scalper.ingest import tickfile
    from scalper.models.config import LabelsConfig, TrainConfig

    ticks = tmp_path / "t.parquet"
    tickfile.write(ticks, random_walk_ticks(2, 20_000))

    def refuse(*_args, **_kw):
        raise ParityError("ONNX and LightGBM differ; model not saved")

    monkeypatch.setattr(train_module, "parity_check", refuse)
    with pytest.raises(ParityError):
        train_module.train_models(
            ticks, tmp_path / "m", FeaturesConfig(), LabelsConfig(dead_zone_ticks=0.0), TrainConfig()
        )
    assert list((tmp_path / "m").glob("*")) == []


def test_snapped_thresholds_decide_every_float32_row_as_the_original():
    from scalper.models.onnx_export import snap_thresholds

    m, X = _model(3)
    # Rows sitting exactly on float32 neighbours of the thresholds are where rounding would bite.
    thresholds = np.array(
        [
            float(t)
            for line in m.booster_.model_to_string().splitlines()
            if line.startswith("threshold=")
            for t in line[10:].split()
        ]
    )
    t32 = thresholds.astype(np.float32)
    near = np.concatenate([t32, np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf))])
    probe = np.repeat(near[:, None], X.shape[1], axis=1)
    rows = np.concatenate([X, probe]).astype(np.float64)
    snapped = snap_thresholds(m.booster_)
    assert np.array_equal(snapped.predict(rows, raw_score=True), m.booster_.predict(rows, raw_score=True))


def test_exported_graph_is_the_tree_ensemble_alone():
    import onnx

    m, X = _model(0)
    graph = onnx.load_from_string(to_onnx(m, 4)).graph
    assert [n.op_type for n in graph.node] == ["TreeEnsembleClassifier"]
    assert {o.name for o in graph.output} == {"label", "probabilities"}
    assert parity_check(m, to_onnx(m, 4), X) <= 1e-5
