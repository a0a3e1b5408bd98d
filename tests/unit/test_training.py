"""train_models: walk-forward folds, calibration in the shipped graph, the label settings on the card."""

import dataclasses

import numpy as np
import pytest
from builders import random_walk_ticks
from pydantic import ValidationError

from scalper.features.config import FeaturesConfig
from scalper.ingest import tickfile
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.models.inference import load_model_dir
from scalper.models.train import train_models

FAST = dict(n_estimators=20, early_stopping_rounds=0, min_child_samples=20)


@pytest.fixture(scope="module")
def ticks(tmp_path_factory):
    path = tmp_path_factory.mktemp("walk") / "t.parquet"
    tickfile.write(path, random_walk_ticks(4, 40_000))
    return path


def test_walk_forward_training_scores_every_fold_and_ships_the_last_calibrated(ticks, tmp_path):
    labels = LabelsConfig(horizons_s=[5.0], flat_share=0.3, split=(0.4, 0.2, 0.4))
    train = TrainConfig(**FAST, folds=3, calibration="temperature", sample_weights="uniqueness")
    (res,) = train_models(ticks, tmp_path, FeaturesConfig(), labels, train)
    card = res.card
    assert [f.index for f in card.folds] == [0, 1, 2]
    for a, b in zip(card.folds, card.folds[1:], strict=False):
        assert a.test_span_ns[1] < b.test_span_ns[0]
    for f in card.folds:
        assert f.train_span_ns[1] + 5e9 < f.val_span_ns[0] and f.val_span_ns[1] + 5e9 < f.test_span_ns[0]
        assert f.test.rows > 0 and f.test_uncalibrated is not None
    assert card.test_span_ns == card.folds[-1].test_span_ns
    assert card.metrics["test"] == card.folds[-1].test
    assert card.calibration is not None and card.calibration["method"] == "temperature"
    assert card.labels.kind == "direction" and card.labels.dead_zone_rule == "flat_share"
    assert card.labels.flat_share_target == 0.3 and card.labels.flat_share_train >= 0.3
    assert card.dead_zone_ticks == card.labels.dead_zone_ticks
    assert card.sample_weights == "uniqueness" and card.window == "expanding"
    (p,) = load_model_dir(tmp_path).predictors
    proba = p.predict_batch(np.random.default_rng(0).normal(size=(50, len(card.feature_names))).astype(np.float32))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_default_dead_zone_is_named_on_the_card(ticks, tmp_path):
    (res,) = train_models(ticks, tmp_path, FeaturesConfig(), LabelsConfig(horizons_s=[5.0]), TrainConfig(**FAST))
    assert res.card.labels.dead_zone_rule == "half_median_spread"
    assert res.card.calibration is None and res.card.folds[0].test_uncalibrated is None


def test_a_card_written_before_label_specs_labels_as_it_was_trained(ticks, tmp_path):
    # Cards of the first format carry only dead_zone_ticks; without this they would load with an empty
    # direction spec and every evaluate or backtest report on them would fail after the replay.
    import json

    from scalper.models.card import ModelCard

    (res,) = train_models(ticks, tmp_path, FeaturesConfig(), LabelsConfig(horizons_s=[5.0]), TrainConfig(**FAST))
    old = res.card.model_dump(mode="json")
    for new_field in ("labels", "calibration", "sample_weights", "window", "folds", "data_files"):
        del old[new_field]
    path = tmp_path / "old_card.json"
    path.write_text(json.dumps(old))
    labels = ModelCard.load(path).labels
    assert (labels.kind, labels.dead_zone_ticks, labels.dead_zone_rule) == (
        "direction",
        res.card.dead_zone_ticks,
        "half_median_spread",
    )


def test_first_passage_training_takes_the_trade_barriers(ticks, tmp_path):
    labels = LabelsConfig(kind="first_passage", horizons_s=[10.0])
    with pytest.raises(ValueError, match="labels.take_profit_bps is unset"):
        train_models(ticks, tmp_path, FeaturesConfig(), labels, TrainConfig(**FAST))
    # The spread is about 3 bps here: a stop closer than that would stop every long out at once.
    labels = labels.with_trade(take_profit_bps=1.0, stop_loss_bps=5.0, latency_ms=1.0, round_trip_fee_bps=1.0)
    (res,) = train_models(ticks, tmp_path, FeaturesConfig(), labels, TrainConfig(**FAST, calibration="isotonic"))
    spec = res.card.labels
    assert (spec.kind, spec.take_profit_bps, spec.stop_loss_bps, spec.latency_ns, spec.round_trip_fee_bps) == (
        "first_passage",
        1.0,
        5.0,
        1_000_000,
        1.0,
    )
    assert res.card.dead_zone_ticks is None
    assert res.card.calibration is not None and res.card.calibration["method"] == "isotonic"
    assert res.card.parity_max_abs_diff <= 1e-5
    assert sum(res.card.metrics["test"].class_counts) == res.card.metrics["test"].rows


def test_labels_config_refuses_settings_of_the_other_kind():
    with pytest.raises(ValidationError, match="take_profit_bps applies to kind = 'first_passage'"):
        LabelsConfig(take_profit_bps=5.0)
    with pytest.raises(ValidationError, match="dead_zone_ticks applies to kind = 'direction'"):
        LabelsConfig(kind="first_passage", dead_zone_ticks=1.0)
    with pytest.raises(ValidationError, match="not both"):
        LabelsConfig(dead_zone_ticks=1.0, flat_share=0.3)
    given = LabelsConfig(kind="first_passage", take_profit_bps=7.0)
    filled = given.with_trade(10.0, 10.0, 1.0, 1.0)
    assert (filled.take_profit_bps, filled.stop_loss_bps) == (7.0, 10.0)
    assert LabelsConfig().with_trade(10.0, 10.0, 1.0, 1.0) == LabelsConfig()


def _later(data, offset_ns):
    return dataclasses.replace(data, ts_event=data.ts_event + offset_ns, ts_recv=data.ts_recv + offset_ns)


def test_training_on_several_sessions_labels_each_on_its_own_and_names_every_file(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    tickfile.write(first, random_walk_ticks(5, 20_000))
    tickfile.write(second, _later(random_walk_ticks(6, 20_000), 86_400 * 10**9))
    labels = LabelsConfig(horizons_s=[5.0], dead_zone_ticks=0.5, split=(0.5, 0.1, 0.4))
    (res,) = train_models([first, second], tmp_path / "m", FeaturesConfig(), labels, TrainConfig(**FAST, folds=2))
    card = res.card
    assert [f["file"] for f in card.data_files] == ["a.parquet", "b.parquet"]
    assert card.data_file == "b.parquet" and card.data_sha256 == card.data_files[1]["sha256"]
    # The second session starts a day later: its first rows are the first fold's test or later.
    assert card.folds[0].train_span_ns[1] < card.folds[1].test_span_ns[0]
    with pytest.raises(ValueError, match="not after session 0 ends"):
        train_models([second, first], tmp_path / "m2", FeaturesConfig(), labels, TrainConfig(**FAST))
    other = tmp_path / "c.parquet"
    data = _later(random_walk_ticks(7, 2_000), 2 * 86_400 * 10**9)
    tickfile.write(other, dataclasses.replace(data, instrument=dataclasses.replace(data.instrument, symbol="OTHER")))
    with pytest.raises(ValueError, match="instrument"):
        train_models([first, other], tmp_path / "m3", FeaturesConfig(), labels, TrainConfig(**FAST))


def test_sessions_clock_squeezes_the_gap_between_sessions():
    from scalper.features.batch import FeatureMatrix
    from scalper.models.dataset import Sessions

    def fm(ts):
        ts = np.array(ts, dtype=np.int64)
        return FeatureMatrix(ts, np.zeros((len(ts), 2)), ts, np.full(len(ts), 100.0))

    rows = Sessions((fm([10, 20, 30]), fm([1_000, 1_005])), (None, None))
    assert rows.ts.tolist() == [10, 20, 30, 1_000, 1_005]
    assert rows.clock_ns.tolist() == [10, 20, 30, 31, 36]
    with pytest.raises(ValueError, match="not after session 0 ends"):
        Sessions((fm([10, 20]), fm([20, 30])), (None, None))


def test_a_feature_set_2_model_loads_and_evaluates_where_set_2_is_computed_and_is_refused_elsewhere(ticks, tmp_path):
    from scalper.models.card import ModelCardMismatch
    from scalper.models.evaluate import evaluate_model_dir

    v2 = FeaturesConfig(set=2)
    train_models(ticks, tmp_path, v2, LabelsConfig(horizons_s=[5.0]), TrainConfig(**FAST))
    (p,) = load_model_dir(tmp_path, 2).predictors
    assert p.card.feature_set_version == 2 and len(p.card.feature_names) > 15
    with pytest.raises(ModelCardMismatch, match="feature set v2, engine has v1"):
        load_model_dir(tmp_path)
    ev = evaluate_model_dir(tmp_path, [ticks], v2, threshold=0.5, taker_fee_bps=0.5, replicates=20)
    (h,) = ev.horizons.values()
    assert np.isfinite(h.log_loss) and h.rows > 0


def test_regime_gated_training_ships_one_graph_and_compares_it_with_the_single_model(ticks, tmp_path):
    from scalper.features.batch import compute_features
    from scalper.models.regime import regime_thresholds

    labels = LabelsConfig(horizons_s=[5.0], flat_share=0.3, split=(0.4, 0.2, 0.4))
    train = TrainConfig(**FAST, folds=2, calibration="temperature", regime_gate="volatility", regime_bins=3)
    (res,) = train_models(ticks, tmp_path, FeaturesConfig(), labels, train)
    card = res.card
    gate = card.regime_gate
    assert gate is not None and gate.feature == "realized_vol_30s_bps" and gate.calibration == "after selection"
    assert [r.regime for r in gate.regimes] == [0, 1, 2] and all(r.own_model for r in gate.regimes)
    # The thresholds are quantiles of the shipped (last) fold's training rows, not of the whole file.
    fm = compute_features(tickfile.read(ticks))
    x = fm.X[:, card.feature_names.index(gate.feature)].astype(np.float32)
    lo, hi = card.train_span_ns
    assert gate.thresholds == regime_thresholds(x[(fm.ts >= lo) & (fm.ts <= hi)], 3).tolist()
    assert gate.thresholds != regime_thresholds(x, 3).tolist()
    assert card.parity_max_abs_diff <= 1e-5
    for f in card.folds:
        c = f.regime_comparison
        assert c is not None and c.single.rows == c.gated.rows == f.test.rows
        assert c.gated.log_loss == pytest.approx(f.test.log_loss)
        for m in (c.single, c.gated):
            assert np.isfinite(m.log_loss_skill) and m.auc_up_down is not None
            lo_, hi_ = m.log_loss_skill_interval
            assert lo_ is not None and hi_ is not None and lo_ <= hi_
        assert c.single.log_loss != c.gated.log_loss
    (p,) = load_model_dir(tmp_path).predictors
    proba = p.predict_batch(fm.X[-500:].astype(np.float32))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # The evaluation report carries the comparison, one row per fold, from the card.
    from scalper.models.evaluate import evaluate_model_dir
    from scalper.models.evaluation_report import write_evaluation_report

    ev = evaluate_model_dir(tmp_path, [ticks], FeaturesConfig(), threshold=0.5, taker_fee_bps=0.5, replicates=20)
    write_evaluation_report(tmp_path / "report", ev, card.classes)
    md = (tmp_path / "report" / "evaluation.md").read_text()
    assert "## Single vs regime-gated (from the cards)" in md
    rows = [line for line in md.splitlines() if line.startswith("| 5s | ") and "realized_vol_30s_bps" in line]
    assert len(rows) == 2 and "(3/3)" in rows[0]
    single = card.folds[1].regime_comparison.single
    assert f"{single.log_loss_skill:.4f}" in rows[1]


def test_a_regime_with_too_few_training_rows_falls_back_to_the_pooled_model(ticks, tmp_path):
    labels = LabelsConfig(horizons_s=[5.0], flat_share=0.3, split=(0.4, 0.2, 0.4))
    # 10 rows per leaf x 2000 = 20 000 rows: more than any regime of this file has.
    train = TrainConfig(n_estimators=5, early_stopping_rounds=0, min_child_samples=2_000, regime_gate="volatility")
    (res,) = train_models(ticks, tmp_path, FeaturesConfig(), labels, train)
    gate = res.card.regime_gate
    assert gate is not None and not any(r.own_model for r in gate.regimes)
    assert all("training rows <" in (r.fallback_reason or "") for r in gate.regimes)
    c = res.card.folds[0].regime_comparison
    assert c is not None and c.gated.log_loss == pytest.approx(c.single.log_loss)
