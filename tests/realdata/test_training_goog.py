"""Labels, purged walk-forward and calibration on the GOOG LOBSTER session: skill out of sample."""

import numpy as np
import pytest

from scalper.features.batch import compute_features
from scalper.features.config import FeaturesConfig
from scalper.ingest import tickfile
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.models.dataset import horizon_labels
from scalper.models.inference import load_model_dir
from scalper.models.labels import DOWN, FLAT, UP
from scalper.models.touchpath import touch_path
from scalper.models.train import train_models

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

# A dead zone that leaves about a third of the training labels flat, uniqueness weights, temperature
# scaling on each fold's validation span, three purged test spans over the last 20 % of the session.
LABELS = LabelsConfig(flat_share=1 / 3)
TRAIN = TrainConfig(folds=3, sample_weights="uniqueness", calibration="temperature")


@pytest.fixture(scope="module")
def goog(goog10_tickfile):
    data = tickfile.read(goog10_tickfile)
    return data, compute_features(data), touch_path(data)


@pytest.fixture(scope="module")
def trained(goog10_tickfile, tmp_path_factory):
    out = tmp_path_factory.mktemp("goog_walk_forward")
    return out, train_models(goog10_tickfile, out, FeaturesConfig(), LABELS, TRAIN)


def test_goog_touch_path_mid_is_the_feature_pass_mid(goog):
    _, fm, path = goog
    assert np.array_equal(path.ts, fm.mid_ts)
    assert np.array_equal(0.5 * (path.bid_tick + path.ask_tick), fm.mid_tick)
    assert (path.bid_tick < path.ask_tick).all()


def test_goog_5s_model_beats_the_prior_in_every_walk_forward_fold(trained):
    _, results = trained
    five = results[0].card
    assert five.horizon_s == 5.0
    assert five.labels.dead_zone_rule == "flat_share" and five.labels.flat_share_train == pytest.approx(1 / 3, abs=0.1)
    assert len(five.folds) == 3
    for fold in five.folds:
        t = fold.test
        assert t.rows > 1_000
        assert t.log_loss < t.baseline_log_loss, f"fold {fold.index}: no log-loss skill over the prior"
        assert t.up_down_auc is not None and t.up_down_auc > 0.6
        assert fold.train_span_ns[1] + 5e9 < fold.val_span_ns[0] and fold.val_span_ns[1] + 5e9 < fold.test_span_ns[0]
    assert five.parity_max_abs_diff <= 1e-5 and five.calibration is not None


def test_goog_shipped_graph_gives_the_card_s_calibrated_test_metrics(trained, goog):
    out, results = trained
    _, fm, _ = goog
    card = results[0].card
    (p, *_) = load_model_dir(out).predictors
    labels = horizon_labels(card.labels, fm, p.horizon_ns)
    test = (fm.ts >= card.test_span_ns[0]) & (labels.y >= 0)
    y = labels.y[test].astype(np.int64)
    proba = p.predict_batch(fm.X[test].astype(np.float32)).astype(np.float64)
    ll = -np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)))
    assert len(y) == card.metrics["test"].rows
    assert ll == pytest.approx(card.metrics["test"].log_loss, abs=1e-4)


def test_goog_first_passage_labels_are_rare_take_profits_for_a_taker(goog):
    # A taker long starts a spread (about 5 bps on GOOG) down: a 10 bps take-profit before a 10 bps stop
    # within 5 s almost never happens; P(UP) is what Kelly is told when it sizes such a trade.
    from scalper.models.card import LabelSpec

    _, fm, path = goog
    spec = LabelSpec(kind="first_passage", take_profit_bps=10.0, stop_loss_bps=10.0, latency_ns=1_000_000)
    y = horizon_labels(spec, fm, 5_000_000_000, path).y
    known = y >= 0
    shares = np.bincount(y[known], minlength=3) / known.sum()
    assert known.mean() > 0.99
    assert shares[FLAT] > 0.99 and shares[UP] < 0.01 and shares[DOWN] < 0.01
