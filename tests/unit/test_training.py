"""train_models: walk-forward folds, calibration in the shipped graph, the label settings on the card."""

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
