"""Feature importance per fold (models/importance.py) and on the model card, for feature sets v1 and v2."""

import numpy as np
import pytest
from builders import random_walk_ticks

from scalper.features.config import FeaturesConfig
from scalper.features.registry import FEATURE_NAMES, FEATURE_NAMES_V2
from scalper.ingest import tickfile
from scalper.models.card import ModelCardMismatch
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.models.importance import gain_shares, permutation_log_loss
from scalper.models.inference import load_model_dir
from scalper.models.train import train_models

FAST = dict(n_estimators=20, early_stopping_rounds=0, min_child_samples=20)


def test_gain_shares_sum_to_one_and_are_zero_without_splits():
    np.testing.assert_allclose(gain_shares(np.array([3.0, 1.0, 0.0])), [0.75, 0.25, 0.0])
    assert gain_shares(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_permutation_hurts_only_the_feature_the_model_reads():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2_000, 3))
    y = (X[:, 0] > 0).astype(np.int64)

    def predict(rows):
        p = 1 / (1 + np.exp(-4 * rows[:, 0]))
        return np.column_stack([1 - p, p])

    rise = permutation_log_loss(predict, X, y, 2, seed=0)
    assert rise[0] > 0.5 and rise[1] == 0.0 and rise[2] == 0.0
    assert np.array_equal(rise, permutation_log_loss(predict, X, y, 2, seed=0))  # seeded
    with pytest.raises(ValueError, match="needs rows"):
        permutation_log_loss(predict, X[:0], y[:0], 2, seed=0)


@pytest.fixture(scope="module")
def ticks(tmp_path_factory):
    path = tmp_path_factory.mktemp("imp") / "t.parquet"
    tickfile.write(path, random_walk_ticks(4, 30_000))
    return path


@pytest.mark.parametrize(("fset", "names"), [(1, FEATURE_NAMES), (2, FEATURE_NAMES_V2)])
def test_every_fold_card_carries_gain_and_permutation_importance_by_feature_name(ticks, tmp_path, fset, names):
    labels = LabelsConfig(horizons_s=[5.0], flat_share=0.3, split=(0.4, 0.2, 0.4))
    train = TrainConfig(**FAST, folds=2, calibration="temperature")
    (res,) = train_models(ticks, tmp_path, FeaturesConfig(set=fset), labels, train)
    card = res.card
    assert card.feature_set_version == fset and tuple(card.feature_names) == names
    for fold in card.folds:
        imp = fold.importance
        assert imp is not None
        assert list(imp.gain_share) == list(imp.permutation_log_loss) == list(names)
        assert sum(imp.gain_share.values()) == pytest.approx(1.0)
        assert max(imp.permutation_log_loss.values()) > 0
    if fset == 2:
        # A v2 model on an engine of the default set v1 is refused, naming both sets.
        with pytest.raises(ModelCardMismatch, match="feature set v2, engine has v1"):
            load_model_dir(tmp_path)
    else:
        assert len(load_model_dir(tmp_path).predictors) == 1
