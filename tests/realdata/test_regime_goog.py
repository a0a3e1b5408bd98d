"""Regime-gated ensembles on the GOOG LOBSTER level-10 session: gated and single both scored, served as one graph."""

import numpy as np
import pytest

from scalper.features.batch import compute_features
from scalper.features.config import FeaturesConfig
from scalper.ingest import tickfile
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.models.dataset import horizon_labels
from scalper.models.inference import load_model_dir
from scalper.models.regime import regime_thresholds
from scalper.models.train import train_models

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

LABELS = LabelsConfig(flat_share=1 / 3)
TRAIN = TrainConfig(
    folds=3, sample_weights="uniqueness", calibration="temperature", regime_gate="volatility", regime_bins=2
)


@pytest.fixture(scope="module")
def trained(goog10_tickfile, tmp_path_factory):
    out = tmp_path_factory.mktemp("goog_regime")
    fm = compute_features(tickfile.read(goog10_tickfile))
    return out, fm, train_models(goog10_tickfile, out, FeaturesConfig(), LABELS, TRAIN)


def test_goog_gated_and_single_models_are_both_scored_in_every_fold(trained):
    _, fm, results = trained
    assert [r.horizon_s for r in results] == [5.0, 10.0, 30.0]
    for r in results:
        card = r.card
        gate = card.regime_gate
        assert gate is not None and gate.feature == "realized_vol_30s_bps" and len(gate.thresholds) == 1
        assert all(g.own_model for g in gate.regimes), "GOOG has rows enough in both regimes"
        # The threshold is the median of the shipped fold's training rows, not of the session.
        x = fm.X[:, card.feature_names.index(gate.feature)].astype(np.float32)
        in_train = (fm.ts >= card.train_span_ns[0]) & (fm.ts <= card.train_span_ns[1])
        assert gate.thresholds == regime_thresholds(x[in_train], 2).tolist()
        assert card.parity_max_abs_diff <= 1e-5
        assert len(card.folds) == 3
        for fold in card.folds:
            c = fold.regime_comparison
            assert c is not None and c.single.rows == c.gated.rows == fold.test.rows > 1_000
            for m in (c.single, c.gated):
                assert np.isfinite([m.log_loss, m.prior_log_loss, m.log_loss_skill]).all()
                assert m.auc_up_down is not None and 0.3 < m.auc_up_down < 0.9
                assert None not in (*m.log_loss_skill_interval, *m.auc_up_down_interval)
            assert c.gated.log_loss == pytest.approx(fold.test.log_loss)


def test_goog_gated_graph_served_as_usual_gives_the_card_s_test_metrics(trained):
    out, fm, results = trained
    card = results[0].card
    (p, *_) = load_model_dir(out).predictors
    labels = horizon_labels(card.labels, fm, p.horizon_ns)
    test = (fm.ts >= card.test_span_ns[0]) & (labels.y >= 0)
    y = labels.y[test].astype(np.int64)
    proba = p.predict_batch(fm.X[test].astype(np.float32)).astype(np.float64)
    ll = -np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)))
    assert len(y) == card.metrics["test"].rows
    assert ll == pytest.approx(card.metrics["test"].log_loss, abs=1e-4)
    assert ll == pytest.approx(card.folds[-1].regime_comparison.gated.log_loss, abs=1e-4)
