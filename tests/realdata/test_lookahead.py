"""The evaluation catches look-ahead: features shifted one decision row (250 ms) into the future must score better.

If the out-of-sample metrics could not tell a model that peeks 250 ms ahead from an honest one, a good
score would prove nothing. Real GOOG rows (LOBSTER level 10), a small LightGBM per feature set, the
5 s direction (mid up / down / unchanged), trained on the first 60 % of the session and scored on the
last 30 % after an embargo of the horizon.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from scalper.features.batch import compute_features
from scalper.features.registry import FEATURE_NAMES
from scalper.ingest import tickfile
from scalper.models.evaluation import row_log_loss, skill_score, up_down_auc

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

H_NS = 5_000_000_000


@pytest.fixture(scope="module")
def goog_rows(goog10_tickfile):
    fm = compute_features(tickfile.read(goog10_tickfile))
    ok = fm.ts + H_NS <= fm.mid_ts[-1]
    ts, X = fm.ts[ok], fm.X[ok]
    change = fm.mid_at(ts + H_NS) - fm.mid_at(ts)
    y = np.where(change > 0, 2, np.where(change < 0, 0, 1))
    t0, t1 = ts[0], ts[-1]
    train = ts < t0 + 0.6 * (t1 - t0)
    test = ts >= t0 + 0.7 * (t1 - t0) + H_NS
    return X, y, train, test


def _score(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    model = lgb.LGBMClassifier(
        n_estimators=60, learning_rate=0.05, num_leaves=15, min_child_samples=100, random_state=7, n_jobs=1, verbose=-1
    )
    model.fit(X[train], y[train])
    proba = np.asarray(model.predict_proba(X[test]))
    prior = np.bincount(y[train], minlength=3) / train.sum()
    skill = skill_score(
        row_log_loss(y[test], proba).mean(), row_log_loss(y[test], np.tile(prior, (test.sum(), 1))).mean()
    )
    auc = up_down_auc(y[test], proba)
    assert auc is not None
    return auc, skill


def _shift(X: np.ndarray, columns: list[int]) -> np.ndarray:
    # Row i sees row i + 1's value: one decision step into the future (the last row keeps its own).
    out = X.copy()
    out[:-1, columns] = X[1:, columns]
    return out


def test_features_one_row_in_the_future_score_better_than_honest_ones(goog_rows):
    X, y, train, test = goog_rows
    assert test.sum() > 5_000 and (y[test] != 1).sum() > 1_000
    honest_auc, honest_skill = _score(X, y, train, test)
    leaked_auc, leaked_skill = _score(_shift(X, list(range(X.shape[1]))), y, train, test)
    one = FEATURE_NAMES.index("mid_return_1s_bps")
    one_auc, one_skill = _score(_shift(X, [one]), y, train, test)
    assert honest_auc > 0.55  # the honest model has an edge to beat, so the comparison means something
    assert leaked_auc > honest_auc + 0.03 and leaked_skill > honest_skill
    assert one_auc > honest_auc + 0.02 and one_skill > honest_skill  # a single peeking feature shows too
