"""Walk-forward folds: purged spans never overlap later ones, spans are ordered, test rows tile; the same
rules for combinatorial purged cross-validation."""

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from scalper.models.split import combinatorial_purged_cv, walk_forward


@given(
    st.lists(st.integers(0, 50), min_size=20, max_size=300),
    st.integers(0, 40),
    st.integers(1, 5),
    st.sampled_from(["expanding", "rolling"]),
    st.sampled_from([(0.6, 0.2, 0.2), (0.4, 0.1, 0.5), (0.5, 0.25, 0.25)]),
    st.randoms(use_true_random=False),
)
def test_purged_folds_do_not_overlap_and_tile_the_test_span(gaps, horizon, n_folds, window, fractions, rnd):
    ts = np.cumsum(gaps).astype(np.int64)
    label_end = ts + np.array([rnd.randint(0, horizon) for _ in ts], dtype=np.int64)
    try:
        folds = walk_forward(ts, fractions, horizon, n_folds, window, label_end)
    except ValueError as exc:
        assume("is empty" not in str(exc))
        raise
    tested = np.zeros(len(ts), dtype=np.int64)
    for f in folds:
        assert f.train_start_ns <= f.val_start_ns <= f.test_start_ns <= f.test_end_ns
        # no training label reaches validation or test, no validation label reaches test
        assert (label_end[f.train] < f.val_start_ns).all()
        assert (label_end[f.val] < f.test_start_ns).all()
        assert ts[f.train].max() < ts[f.val].min() <= ts[f.val].max() < ts[f.test].min()
        assert not (f.train & f.test).any() and not (f.val & f.test).any() and not (f.train & f.val).any()
        tested += f.test
    first_test = folds[0].test_start_ns
    assert (tested[ts >= first_test] == 1).all()
    assert (tested[ts < first_test] == 0).all()
    starts = [f.test_start_ns for f in folds]
    assert starts == sorted(starts)


@given(
    st.lists(st.integers(0, 30), min_size=10, max_size=200),
    st.integers(0, 40),
    st.integers(2, 6),
    st.data(),
)
def test_combinatorial_splits_purge_and_embargo_around_every_tested_group(gaps, horizon, n_groups, data):
    ts = np.cumsum(gaps).astype(np.int64)
    assume(n_groups <= len(ts))
    k = data.draw(st.integers(1, n_groups - 1))
    label_end = ts + np.array(data.draw(st.lists(st.integers(0, horizon), min_size=len(ts), max_size=len(ts))))
    splits = combinatorial_purged_cv(ts, n_groups, k, horizon, label_end)
    assert len(splits) == math.comb(n_groups, k)
    tested = np.zeros(len(ts), dtype=np.int64)
    for sp in splits:
        assert not (sp.train & sp.test).any()
        tested += sp.test
        idx = np.flatnonzero(sp.test)
        # contiguous runs of tested rows are the tested groups' spans
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        for run in runs:
            first, last = ts[run[0]], ts[run[-1]]
            touches = (ts[sp.train] <= last) & (label_end[sp.train] >= first)
            assert not touches.any()
            assert not ((ts[sp.train] > last) & (ts[sp.train] <= last + horizon)).any()
    assert (tested == math.comb(n_groups - 1, k - 1)).all()
