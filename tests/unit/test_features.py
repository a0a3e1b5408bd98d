import numpy as np
import pytest
from builders import T0, TickBuilder, random_walk_ticks
from reference_features import assert_features_equal_reference

from scalper.features.batch import compute_features
from scalper.features.kernels import CODE_DECISION, PRE_MASK, FeatureState, step
from scalper.features.registry import FEATURE_NAMES, N_FEATURES
from scalper.features.state_layout import I_DECISION_TS
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE

MS = 1_000_000
col = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _one_book():
    b = TickBuilder().snapshot(T0, [(100, 30.0), (99, 10.0)], [(102, 10.0), (103, 50.0)])
    b.trade(T0 + 100 * MS, 1, 102, 4.0)
    b.trade(T0 + 200 * MS, -1, 100, 1.0)
    b.level(T0 + 600 * MS, 1, 99, 10.0)  # no change at the top
    return b.build()


def test_features_on_hand_made_book_have_textbook_values():
    fm = compute_features(_one_book())
    # The trade at 100 ms triggers the decision at the grid point T0 (the snapshot's time); the
    # event at 600 ms triggers only the latest grid point before it, 500 ms (250 ms had no event after it).
    assert fm.ts.tolist() == [T0, T0 + 500 * MS]
    x = fm.X[1]
    assert x[col["spread_ticks"]] == 2
    # microprice = (100*10 + 102*30)/40 = 101.5; mid = 101
    assert x[col["microprice_minus_mid_ticks"]] == pytest.approx(0.5)
    assert x[col["queue_imbalance_l1"]] == pytest.approx((30 - 10) / 40)
    assert x[col["depth_imbalance_5"]] == pytest.approx((40 - 60) / 100)
    assert x[col["trade_flow_imbalance_5s"]] == pytest.approx((4 - 1) / 5)
    assert x[col["trade_count_5s"]] == 2
    assert x[col["time_since_last_trade_s"]] == pytest.approx(0.3)
    assert x[col["ofi_1s"]] == 0 and x[col["mid_return_1s_bps"]] == 0


def test_ofi_follows_cont_kukanov_stoikov_cases():
    b = TickBuilder().snapshot(T0, [(100, 5.0)], [(102, 5.0)])
    b.level(T0 + 10 * MS, 1, 100, 8.0)  # bid queue grows: e = +3
    b.level(T0 + 20 * MS, 1, 101, 2.0)  # bid price improves: e = +2
    b.level(T0 + 30 * MS, -1, 102, 1.0)  # ask queue shrinks by 4: e = +4
    b.level(T0 + 40 * MS, -1, 101, 0.0)  # no-op delete on the ask side: no change
    b.level(T0 + 300 * MS, 1, 90, 1.0)
    x = compute_features(b.build()).X[-1]
    assert x[col["ofi_1s"]] == pytest.approx(3 + 2 + 4)
    assert x[col["mid_return_1s_bps"]] == pytest.approx(1e4 * np.log(101.5 / 101.0))


def test_windows_forget_events_older_than_the_window():
    b = TickBuilder().snapshot(T0, [(100, 5.0)], [(102, 5.0)])
    b.trade(T0 + 1, 1, 102, 1.0)
    b.level(T0 + 6_000 * MS, 1, 90, 1.0)
    x = compute_features(b.build()).X[-1]
    assert x[col["trade_count_5s"]] == 0
    assert x[col["trade_flow_imbalance_5s"]] == 0.0
    assert x[col["trade_flow_imbalance_30s"]] == 1.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernel_features_equal_pure_python_reference(seed):
    data = random_walk_ticks(seed, 1500)
    fm = compute_features(data)
    assert_features_equal_reference(fm.X, data, fm.ts)


def test_live_event_by_event_equals_batch():
    data = random_walk_ticks(11, 5000)
    fm = compute_features(data)
    st = FeatureState()
    arrays = st.arrays()
    rows, ts = [], []
    ticks = data.price_tick
    for i in range(len(data)):
        while True:
            code = step(
                *arrays, data.ts_event[i], data.kind[i], data.side[i], ticks[i], data.size[i], data.flags[i], st.feat
            )
            if code & CODE_DECISION:
                rows.append(st.feat.copy())
                ts.append(int(st.ist[I_DECISION_TS]))
            if not code & PRE_MASK:
                break
    assert np.array_equal(np.array(ts), fm.ts)
    assert np.array_equal(np.array(rows), fm.X)


def test_changing_the_future_does_not_change_past_features():
    data = random_walk_ticks(5, 3000)
    cut = int(data.ts_event[len(data) // 2])
    fm = compute_features(data)
    later = data.ts_event > cut
    shuffled = data.size.copy()
    rng = np.random.default_rng(0)
    shuffled[later & (data.kind == KIND_TRADE)] = rng.integers(1, 50, int((later & (data.kind == KIND_TRADE)).sum()))
    book_later = later & (data.kind == KIND_BOOK) & (data.size > 0)
    shuffled[book_later] = rng.integers(1, 50, int(book_later.sum()))
    from dataclasses import replace

    fm2 = compute_features(replace(data, size=shuffled))
    past = fm.ts <= cut
    assert past.sum() > 100
    assert np.array_equal(fm.X[past], fm2.X[: past.sum()])
    assert not np.array_equal(fm.X[~past], fm2.X[past.sum() :])


def test_no_decision_on_a_one_sided_book():
    b = TickBuilder().snapshot(T0, [(100, 5.0)], [])
    b.level(T0 + 1_000 * MS, 1, 99, 1.0)
    assert compute_features(b.build()).X.shape == (0, N_FEATURES)


def test_ring_overflow_is_counted_and_keeps_the_newest_events():
    from scalper.features.kernels import I_RING_OVERFLOWS

    b = TickBuilder().snapshot(T0, [(100, 5.0)], [(102, 5.0)])
    for k in range(20):
        b.trade(T0 + (k + 1) * MS, 1, 102, 1.0)
    b.level(T0 + 300 * MS, 1, 90, 1.0)
    state = FeatureState(ring_capacity=8)
    x = compute_features(b.build(), state).X[-1]
    assert state.ist[I_RING_OVERFLOWS] == 12
    assert x[col["trade_count_5s"]] == 8


def test_crossed_book_blocks_decisions_until_uncrossed():
    from scalper.features.kernels import I_CROSSED

    b = TickBuilder().snapshot(T0, [(100, 5.0)], [(102, 5.0)])
    b.level(T0 + 100 * MS, 1, 103, 1.0)  # bid above ask: crossed
    b.level(T0 + 400 * MS, 1, 90, 1.0)  # still crossed at 250 ms: no decision
    b.level(T0 + 500 * MS, 1, 103, 0.0)  # uncrossed again
    b.level(T0 + 800 * MS, 1, 90, 2.0)  # decision at 750 ms
    state = FeatureState()
    fm = compute_features(b.build(), state)
    assert fm.ts.tolist() == [T0, T0 + 750 * MS]
    assert state.ist[I_CROSSED] == 2
