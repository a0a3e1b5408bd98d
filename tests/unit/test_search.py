"""Optuna search inside a fold's training span: the rows it reads, seeding, and the card it leaves."""

import sys

import numpy as np
import pytest
from builders import random_walk_ticks

from scalper.features.config import FeaturesConfig
from scalper.ingest import tickfile
from scalper.models import search
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.models.split import walk_forward
from scalper.models.train import train_models

BASE = dict(objective="multiclass", n_estimators=15, random_state=3, n_jobs=1, deterministic=True, verbose=-1)


def _rows(m: int = 3_000, seed: int = 0):
    # Column 0 is the row's index: whatever a trial fits or scores on names its rows.
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=m)
    X = np.column_stack([np.arange(m, dtype=np.float64), signal, rng.normal(size=m)])
    y = np.digitize(signal + rng.normal(scale=1.0, size=m), [-0.5, 0.5]).astype(np.int64)
    ts = np.arange(m, dtype=np.int64) * 100_000_000
    end = ts + 2_000_000_000
    return X, y, ts, end


def _search(X, y, ts, end, mask, seed=5, trials=4):
    return search.search_params(
        X, y, ts, end, mask, lambda m: np.ones(int(m.sum())), (0.6, 0.2, 0.2), 2_000_000_000, BASE, trials, seed, 5, 3
    )


def test_search_trials_read_only_the_folds_training_rows(monkeypatch):
    pytest.importorskip("optuna")
    X, y, ts, end = _rows()
    fold = walk_forward(ts, (0.5, 0.2, 0.3), 2_000_000_000, 2, "expanding", end)[1]
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    real = search.fit_score

    def watched(params, base, train, val, test, rounds, n_classes):
        seen.append((train.X[:, 0].astype(int), val.X[:, 0].astype(int), test.X[:, 0].astype(int)))
        return real(params, base, train, val, test, rounds, n_classes)

    monkeypatch.setattr(search, "fit_score", watched)
    result = _search(X, y, ts, end, fold.train)
    assert len(seen) == result.trials == 4
    allowed = set(np.flatnonzero(fold.train).tolist())
    outside = set(np.flatnonzero(fold.val | fold.test).tolist())
    for tr, va, te in seen:
        rows = set(tr.tolist()) | set(va.tolist()) | set(te.tolist())
        assert rows <= allowed and not rows & outside
        # The inner parts follow in time, purged: no inner training label reaches the inner validation part.
        assert end[tr].max() < ts[va].min() and end[va].max() < ts[te].min()
    assert result.inner_rows == (len(seen[0][0]), len(seen[0][1]), len(seen[0][2]))
    assert set(result.params) == set(search.SPACE)


def test_seeded_search_chooses_the_same_params():
    pytest.importorskip("optuna")
    X, y, ts, end = _rows()
    mask = np.arange(len(y)) < 2_000
    a, b = _search(X, y, ts, end, mask, seed=11), _search(X, y, ts, end, mask, seed=11)
    assert a == b
    for name, (_, low, high) in search.SPACE.items():
        assert low <= a.params[name] <= high


def test_search_without_optuna_names_the_extra(monkeypatch):
    X, y, ts, end = _rows(300)
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(search.SearchError, match=r"\.\[research\]"):
        _search(X, y, ts, end, np.ones(len(y), dtype=bool))


def test_search_refuses_a_training_span_too_short_to_split():
    pytest.importorskip("optuna")
    X, y, ts, end = _rows(300)
    with pytest.raises(search.SearchError, match="cannot be split"):
        _search(X, y, ts, end, np.arange(len(y)) < 20)  # 2 s of rows, a 2 s embargo: nothing left


def test_train_with_search_records_the_choice_on_the_card_and_repeats_it(tmp_path):
    pytest.importorskip("optuna")
    ticks = tmp_path / "t.parquet"
    tickfile.write(ticks, random_walk_ticks(8, 12_000))
    labels = LabelsConfig(horizons_s=[5.0], dead_zone_ticks=0.0)
    cfg = TrainConfig(n_estimators=10, folds=2, search="optuna", search_trials=3)
    cards = [train_models(ticks, tmp_path / f"m{i}", FeaturesConfig(), labels, cfg)[0].card for i in range(2)]
    assert cards[0].params == cards[1].params
    p = cards[0].params
    assert p["search"] == "optuna" and p["search_trials"] == 3 and p["search_inner_log_loss"] > 0
    for name, (_, low, high) in search.SPACE.items():
        assert low <= p[name] <= high
    plain = train_models(ticks, tmp_path / "plain", FeaturesConfig(), labels, cfg.model_copy(update={"search": "none"}))
    assert "search" not in plain[0].card.params and plain[0].card.params["num_leaves"] == cfg.num_leaves
