import numpy as np
import pytest
from builders import T0, TickBuilder, random_walk_ticks

from scalper.ingest.tickfile import KIND_BOOK
from scalper.models.labels import (
    DOWN,
    FLAT,
    LONG,
    SHORT,
    STOP_LOSS,
    TAKE_PROFIT,
    TIME_STOP,
    UNKNOWN,
    UNRESOLVED,
    UP,
    dead_zone_for_flat_share,
    default_dead_zone,
    direction_labels,
    first_passage,
    uniqueness_weights,
)
from scalper.models.split import walk_forward
from scalper.models.touchpath import TouchPath, touch_path

S = 1_000_000_000
MS = 1_000_000


def test_direction_labels_use_dead_zone_and_mark_unknown():
    now = np.array([100.0, 100.0, 100.0, 100.0, 100.0])
    later = np.array([101.5, 99.0, 100.5, 98.4, np.nan])
    assert direction_labels(now, later, 1.0).tolist() == [UP, FLAT, FLAT, DOWN, UNKNOWN]


def test_direction_labels_refuse_negative_dead_zone():
    with pytest.raises(ValueError, match="dead_zone_ticks"):
        direction_labels(np.zeros(1), np.zeros(1), -1.0)


def test_default_dead_zone_is_half_the_median_spread():
    assert default_dead_zone(np.array([1.0, 2.0, 3.0, 10.0])) == 1.25


def test_dead_zone_for_flat_share_is_the_smallest_reaching_the_share():
    change = np.array([0.0, 0.5, -0.5, 1.0, -2.0, 3.0, np.nan, 0.0, 0.5, -1.0])
    # |change| sorted: 0 0 .5 .5 .5 1 1 2 3 (9 known); 5/9 are <= 0.5, 7/9 <= 1
    assert dead_zone_for_flat_share(change, 0.5) == 0.5
    assert dead_zone_for_flat_share(change, 0.6) == 1.0
    assert dead_zone_for_flat_share(change, 0.0) == 0.0
    labels = direction_labels(np.zeros(10), change, dead_zone_for_flat_share(change, 0.6))
    assert (labels == FLAT).sum() / (labels >= 0).sum() >= 0.6
    with pytest.raises(ValueError, match="flat_share"):
        dead_zone_for_flat_share(change, 1.0)
    with pytest.raises(ValueError, match="zero labelled rows"):
        dead_zone_for_flat_share(np.array([np.nan]), 0.5)


def test_touch_path_samples_valid_message_ends_only():
    b = TickBuilder()
    b.snapshot(T0, [(100, 1.0)], [(102, 1.0)])
    b.level(T0 + 1, 1, 101, 2.0)
    b.message(T0 + 2, (KIND_BOOK, 1, 103, 1.0), (KIND_BOOK, 1, 103, 0.0))  # crossed mid-message only
    b.level(T0 + 3, -1, 101, 1.0)  # locked: not sampled
    b.level(T0 + 4, -1, 101, 0.0)
    path = touch_path(b.build())
    assert path.ts.tolist() == [T0, T0 + 1, T0 + 2, T0 + 4]
    assert path.bid_tick.tolist() == [100, 101, 101, 101]
    assert path.ask_tick.tolist() == [102, 102, 102, 102]


def test_touch_path_mid_equals_the_feature_pass_mid():
    from scalper.features.batch import compute_features

    data = random_walk_ticks(3, 3_000)
    path = touch_path(data)
    fm = compute_features(data)
    assert np.array_equal(path.ts, fm.mid_ts)
    assert np.array_equal(0.5 * (path.bid_tick + path.ask_tick), fm.mid_tick)


def _path(points):
    ts, bid, ask = zip(*points, strict=True)
    return TouchPath(np.array(ts, dtype=np.int64), np.array(bid, dtype=np.int64), np.array(ask, dtype=np.int64))


def test_first_passage_long_take_profit_on_the_bid_before_the_stop():
    # Entry: a long buys the ask 10_000; 10 bps -> take-profit bid >= 10_010, stop bid <= 9_990.
    path = _path([(0, 9_998, 10_000), (1 * S, 10_009, 10_011), (2 * S, 10_010, 10_012), (3 * S, 9_980, 9_982)])
    fp = first_passage(np.array([0]), path, 5 * S, 10.0, 10.0, round_trip_fee_bps=1.0)
    assert fp.outcome[0, LONG] == TAKE_PROFIT
    assert fp.end_ns[0, LONG] == 2 * S
    assert fp.net_bps[0, LONG] == pytest.approx(10.0 - 1.0)
    # The short sold the bid 9_998: stop at ask >= 10_008 (ceil of 10_007.998), met at 1 s.
    assert fp.outcome[0, SHORT] == STOP_LOSS
    assert fp.end_ns[0, SHORT] == 1 * S
    assert fp.net_bps[0, SHORT] == pytest.approx((9_998 - 10_011) / 9_998 * 1e4 - 1.0)
    classes, decided = fp.classes()
    assert classes.tolist() == [UP] and decided.tolist() == [2 * S]


def test_first_passage_time_stop_exits_at_the_touch_after_the_horizon():
    path = _path([(0, 9_998, 10_000), (1 * S, 10_001, 10_003), (6 * S, 10_004, 10_006)])
    fp = first_passage(np.array([0]), path, 5 * S, 10.0, 10.0)
    assert fp.outcome[0].tolist() == [TIME_STOP, TIME_STOP]
    assert fp.end_ns[0].tolist() == [5 * S, 5 * S]
    assert fp.net_bps[0, LONG] == pytest.approx((10_001 - 10_000) / 10_000 * 1e4)
    assert fp.classes()[0].tolist() == [FLAT]


def test_first_passage_is_unresolved_when_the_data_ends_before_the_time_stop():
    path = _path([(0, 9_998, 10_000), (1 * S, 10_001, 10_003)])
    fp = first_passage(np.array([0, 2 * S]), path, 5 * S, 10.0, 10.0)
    assert (fp.outcome == UNRESOLVED).all()
    assert np.isnan(fp.net_bps).all()
    assert fp.classes()[0].tolist() == [UNKNOWN, UNKNOWN]


def test_first_passage_latency_moves_entry_and_exit():
    path = _path([(0, 9_998, 10_000), (1 * MS, 9_990, 9_992), (2 * S, 10_000, 10_002), (2 * S + MS, 10_005, 10_007)])
    fp = first_passage(np.array([0]), path, 5 * S, 5.0, 50.0, latency_ns=MS)
    # Entry at the ask as of 1 ms (9_992), take-profit bid >= 9_997 (ceil of 9_996.996) met at 2 s,
    # exit fill on the bid as of 2 s + 1 ms.
    assert fp.outcome[0, LONG] == TAKE_PROFIT and fp.end_ns[0, LONG] == 2 * S
    assert fp.net_bps[0, LONG] == pytest.approx((10_005 - 9_992) / 9_992 * 1e4)


def test_first_passage_short_take_profit_is_down():
    path = _path([(0, 10_000, 10_002), (1 * S, 9_988, 9_990), (2 * S, 10_040, 10_042)])
    fp = first_passage(np.array([0]), path, 5 * S, 10.0, 10.0)
    assert fp.outcome[0, SHORT] == TAKE_PROFIT
    assert fp.classes()[0].tolist() == [DOWN]


def test_first_passage_refuses_bad_parameters():
    path = _path([(0, 1, 2)])
    with pytest.raises(ValueError, match="horizon_ns"):
        first_passage(np.array([0]), path, 0, 1.0, 1.0)
    with pytest.raises(ValueError, match="take_profit_bps"):
        first_passage(np.array([0]), path, S, 0.0, 1.0)
    with pytest.raises(ValueError, match="latency_ns"):
        first_passage(np.array([0]), path, S, 1.0, 1.0, latency_ns=-1)
    with pytest.raises(ValueError, match="non-decreasing"):
        first_passage(np.array([1, 0]), path, S, 1.0, 1.0)


def test_uniqueness_weights_of_disjoint_labels_are_one():
    start = np.array([0, 10, 20, 30], dtype=np.int64)
    assert uniqueness_weights(start, start + 5).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_uniqueness_weights_average_inverse_concurrency():
    start = np.array([0, 1, 2, 3], dtype=np.int64)
    end = np.array([1, 2, 2, 3], dtype=np.int64)
    # rows 0..3 are covered by: {0}, {0, 1}, {1, 2}, {3} -> concurrency 1, 2, 2, 1
    w = uniqueness_weights(start, end)
    assert w.tolist() == [0.75, 0.5, 0.5, 1.0]
    keep = np.array([True, False, True, True])
    assert uniqueness_weights(start, end, keep).tolist() == [1.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="before it starts"):
        uniqueness_weights(start, start - 1)


def test_walk_forward_with_one_fold_is_a_purged_train_val_test_split():
    ts = np.arange(0, 1000 * S, S // 4, dtype=np.int64)
    (sp,) = walk_forward(ts, (0.6, 0.2, 0.2), 30 * S)
    assert ts[sp.train].max() < sp.val_start_ns - 30 * S + 1
    assert ts[sp.val].min() >= sp.val_start_ns
    assert ts[sp.val].max() < sp.test_start_ns - 30 * S + 1
    assert ts[sp.test].min() >= sp.test_start_ns and sp.test[-1]
    assert not (sp.train & sp.val).any() and not (sp.val & sp.test).any()
    # labels of the last training row look 30 s ahead and must end before validation starts
    assert ts[sp.train].max() + 30 * S < sp.val_start_ns


def test_walk_forward_purges_rows_whose_label_ends_in_a_later_part():
    ts = np.arange(0, 100 * S, S, dtype=np.int64)
    end = ts + S
    end[50] = 90 * S  # a long-lived label in what would be training
    (sp,) = walk_forward(ts, (0.6, 0.2, 0.2), S, label_end_ns=end)
    assert not sp.train[50] and sp.train[49] and sp.train[51]


def test_walk_forward_folds_tile_the_test_span_expanding_and_rolling():
    ts = np.arange(0, 1000 * S, S, dtype=np.int64)
    for window in ("expanding", "rolling"):
        folds = walk_forward(ts, (0.5, 0.1, 0.4), 10 * S, n_folds=4, window=window)
        tested = np.sum([f.test for f in folds], axis=0)
        assert set(tested[ts >= folds[0].test_start_ns].tolist()) == {1}
        assert not tested[ts < folds[0].test_start_ns].any()
        for f in folds:
            assert ts[f.train].max() + 10 * S < f.val_start_ns <= ts[f.val].min()
            assert ts[f.val].max() + 10 * S < f.test_start_ns <= ts[f.test].min()
    rolling = walk_forward(ts, (0.5, 0.1, 0.4), 10 * S, n_folds=4, window="rolling")
    assert [int(f.train.sum()) for f in rolling] == [490, 490, 490, 490]


def test_walk_forward_rejects_bad_fractions_and_empty_parts():
    ts = np.arange(0, 100 * S, S, dtype=np.int64)
    with pytest.raises(ValueError, match="sum to 1"):
        walk_forward(ts, (0.5, 0.2, 0.2), 0)
    with pytest.raises(ValueError, match="fold 0: the train span is empty"):
        walk_forward(ts, (0.6, 0.2, 0.2), 70 * S)
    with pytest.raises(ValueError, match="n_folds"):
        walk_forward(ts, (0.6, 0.2, 0.2), 0, n_folds=0)
    with pytest.raises(ValueError, match="window"):
        walk_forward(ts, (0.6, 0.2, 0.2), 0, window="sliding")  # type: ignore[arg-type]


def test_combinatorial_purged_cv_purges_before_and_embargoes_after_each_tested_group():
    from scalper.models.split import combinatorial_purged_cv

    ts = np.arange(12, dtype=np.int64) * S
    splits = combinatorial_purged_cv(ts, 4, 1, S, label_end_ns=ts + S)
    assert [sp.test_groups for sp in splits] == [(0,), (1,), (2,), (3,)]
    sp = splits[1]  # tests rows 3..5
    assert np.flatnonzero(sp.test).tolist() == [3, 4, 5]
    # row 2's label reaches row 3's time (purged); row 6 starts within the 1 s embargo after row 5
    assert np.flatnonzero(sp.train).tolist() == [0, 1, 7, 8, 9, 10, 11]
    with pytest.raises(ValueError, match="n_test_groups"):
        combinatorial_purged_cv(ts, 4, 4, S)
