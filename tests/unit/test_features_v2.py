"""Feature set v2: textbook values on hand-made books, v1 columns unchanged, the set chosen by config."""

import datetime as dt

import numpy as np
import pytest
from builders import T0, TickBuilder, random_walk_ticks
from reference_features import assert_features_v2_equal_reference

from scalper.features.batch import compute_features
from scalper.features.config import FeaturesConfig
from scalper.features.kernels import CODE_DECISION, PRE_MASK, FeatureState
from scalper.features.kernels_v2 import step as step_v2
from scalper.features.registry import (
    FEATURE_NAMES,
    FEATURE_NAMES_V2,
    FEATURES_V2,
    N_FEATURES,
    N_FEATURES_V2,
    feature_names,
)
from scalper.features.session import ALL_DAY, session_clock
from scalper.features.state_layout import I_DECISION_TS
from scalper.ingest.tickfile import Instrument

MS = 1_000_000
S = 1_000 * MS
col = {name: i for i, name in enumerate(FEATURE_NAMES_V2)}


def _v2(data, grid_ms=250):
    return compute_features(data, FeatureState(grid_ns=grid_ms * MS, feature_set=2))


def test_v2_is_v1_followed_by_the_new_columns_each_with_unit_and_source():
    assert FEATURE_NAMES_V2[:N_FEATURES] == FEATURE_NAMES
    assert N_FEATURES_V2 == len(set(FEATURE_NAMES_V2)) == N_FEATURES + 17
    assert all(f.unit and f.definition and f.source for f in FEATURES_V2)
    assert feature_names(2) == FEATURE_NAMES_V2
    with pytest.raises(ValueError, match="no feature set v3"):
        feature_names(3)


def test_v1_columns_of_a_v2_matrix_equal_the_v1_matrix():
    data = random_walk_ticks(3, 1_000)
    v1 = compute_features(data)
    v2 = _v2(data)
    assert v2.names == FEATURE_NAMES_V2 and v2.X.shape == (len(v1.ts), N_FEATURES_V2)
    assert np.array_equal(v2.ts, v1.ts)
    assert np.array_equal(v2.X[:, :N_FEATURES], v1.X)
    assert np.array_equal(v2.mid_tick, v1.mid_tick)
    assert_features_v2_equal_reference(v2.X, data, v2.ts)


def test_adds_cancels_depletion_and_trade_matching_have_textbook_values():
    b = TickBuilder().snapshot(T0, [(100, 10.0), (99, 10.0)], [(102, 10.0), (103, 10.0)])
    b.level(T0 + 10 * MS, 1, 99, 14.0)  # add 4 at the second bid
    b.trade(T0 + 20 * MS, 1, 102, 3.0)  # a buy takes 3 at the best ask
    b.level(T0 + 30 * MS, -1, 102, 5.0)  # ask 102 down 5: 3 traded, 2 cancelled; depletion 5
    b.level(T0 + 40 * MS, 1, 90, 7.0)  # a new bid level among the best 5: add 7
    b.level(T0 + 50 * MS, 1, 100, 0.0)  # best bid removed: cancel 10, depletion 10
    b.level(T0 + 300 * MS, -1, 110, 1.0)  # triggers the decision at 250 ms
    x = _v2(b.build()).X[-1]
    assert x[col["add_rate_bid_5s"]] == pytest.approx((4 + 7) / 5)
    assert x[col["add_rate_ask_5s"]] == 0.0
    assert x[col["cancel_rate_ask_5s"]] == pytest.approx(2 / 5)
    assert x[col["cancel_rate_bid_5s"]] == pytest.approx(10 / 5)
    assert x[col["queue_depletion_ask_5s"]] == pytest.approx(5 / 5)
    assert x[col["queue_depletion_bid_5s"]] == pytest.approx(10 / 5)
    # Spread 2 -> 3 (best bid 100 -> 99); the mid moved once, after 3 bought: lambda = y / x.
    assert x[col["spread_change_5s_ticks_per_s"]] == pytest.approx(1 / 5)
    y = 1e4 * np.log(100.5 / 101.0)
    assert x[col["kyle_lambda_30s"]] == pytest.approx(y / 3.0)
    assert x[col["efficiency_ratio_30s"]] == pytest.approx(1.0)


def test_trade_sign_autocorrelation_over_the_last_50_trades():
    b = TickBuilder().snapshot(T0, [(100, 10.0)], [(102, 10.0)])
    signs = [1, 1, -1, 1, -1, -1, -1, 1] * 10  # 80 trades: the window keeps the last 50
    for j, s in enumerate(signs):
        b.trade(T0 + (j + 1) * MS, s, 102 if s > 0 else 100, 1.0)
    b.level(T0 + 300 * MS, -1, 110, 1.0)
    x = _v2(b.build()).X[-1]
    last = signs[-50:]
    want = np.mean([a * c for a, c in zip(last[1:], last[:-1], strict=True)])
    assert x[col["trade_sign_autocorr_50"]] == pytest.approx(want)


def test_level_two_ofi_follows_the_cks_cases_at_the_second_level():
    b = TickBuilder().snapshot(T0, [(100, 5.0), (99, 5.0)], [(102, 5.0), (103, 5.0)])
    b.level(T0 + 10 * MS, 1, 99, 8.0)  # level-2 bid grows: +3
    b.level(T0 + 20 * MS, -1, 103, 1.0)  # level-2 ask shrinks: +4
    b.level(T0 + 30 * MS, 1, 98, 2.0)  # a third bid: level 2 unchanged
    b.level(T0 + 300 * MS, -1, 110, 1.0)
    x = _v2(b.build()).X[-1]
    assert x[col["ofi_l2_5s"]] == pytest.approx(3 + 4)
    assert x[col["ofi_l3_5s"]] == 0.0  # the bid side had no third level before


def test_time_of_day_on_nasdaq_counts_from_the_open_and_to_the_close():
    clock = session_clock("NASDAQ", int(dt.datetime(2012, 6, 21, 15, 0, tzinfo=dt.UTC).timestamp()) * S)
    assert clock.open_ns == int(dt.datetime(2012, 6, 21, 13, 30, tzinfo=dt.UTC).timestamp()) * S  # 09:30 EDT
    assert clock.close_ns - clock.open_ns == 23_400 * S
    assert session_clock("BINANCE_USDM", T0) == ALL_DAY
    t0 = clock.open_ns + 3_600 * S
    nasdaq = Instrument("NASDAQ", "GOOG", 0.01, 1.0, "test")
    b = TickBuilder(nasdaq).snapshot(t0, [(100, 5.0)], [(102, 5.0)])
    b.level(t0 + 300 * MS, -1, 110, 1.0)
    x = _v2(b.build()).X[-1]
    assert x[col["time_of_day_s"]] == pytest.approx(3_600.25)
    assert x[col["time_to_close_s"]] == pytest.approx(23_400 - 3_600.25)
    crypto = _v2(TickBuilder().snapshot(T0, [(100, 5.0)], [(102, 5.0)]).level(T0 + 300 * MS, -1, 110, 1.0).build())
    assert crypto.X[-1, col["time_of_day_s"]] == pytest.approx(((T0 + 250 * MS) % (86_400 * S)) / 1e9)
    assert crypto.X[-1, col["time_to_close_s"]] == -1.0


def test_vol_regime_is_one_while_the_session_is_shorter_than_the_window():
    data = random_walk_ticks(5, 300, mean_gap_ns=20 * MS)  # about 6 s of events
    x = _v2(data).X
    assert np.allclose(x[:, col["vol_regime_30s"]], 1.0)


def test_config_set_two_builds_a_v2_state_and_live_steps_equal_the_batch():
    fc = FeaturesConfig(set=2)
    state = FeatureState.from_config(fc)
    assert state.feature_set == 2 and state.feat.shape == (N_FEATURES_V2,)
    assert len(state.arrays()) == 14 and len(FeatureState().arrays()) == 10
    with pytest.raises(ValueError):
        FeaturesConfig(set=3)
    with pytest.raises(ValueError, match="feature set v1 has no session"):
        FeatureState().set_session(ALL_DAY)
    data = random_walk_ticks(11, 2_000)
    fm = compute_features(data, FeatureState.from_config(fc))
    arrays = state.arrays()
    rows = []
    for i in range(len(data)):
        while True:
            code = step_v2(
                *arrays,
                int(data.ts_event[i]),
                int(data.kind[i]),
                int(data.side[i]),
                int(data.price_tick[i]),
                float(data.size[i]),
                int(data.flags[i]),
                state.feat,
            )
            if code & CODE_DECISION:
                rows.append((int(state.ist[I_DECISION_TS]), state.feat.copy()))
            if not code & PRE_MASK:
                break
    assert [t for t, _ in rows] == fm.ts.tolist()
    assert np.array_equal(np.array([r for _, r in rows]), fm.X)


def test_a_v2_model_card_is_refused_by_a_v1_engine_and_accepted_by_a_v2_one():
    from scalper.models.card import ModelCard, ModelCardMismatch

    card = ModelCard.model_construct(feature_set_version=2, feature_names=list(FEATURE_NAMES_V2))
    with pytest.raises(ModelCardMismatch, match=r"feature set v2, engine has v1 \(.*\[features\] set = 1\)"):
        card.check_features("h5s.json")
    card.check_features("h5s.json", feature_set=2)
    v1_card = ModelCard.model_construct(feature_set_version=1, feature_names=list(FEATURE_NAMES))
    with pytest.raises(ModelCardMismatch, match="feature set v1, engine has v2"):
        v1_card.check_features("h5s.json", feature_set=2)
    bad = ModelCard.model_construct(feature_set_version=2, feature_names=list(FEATURE_NAMES_V2[:-1]))
    with pytest.raises(ModelCardMismatch, match="31 features, engine has 32"):
        bad.check_features("h5s.json", feature_set=2)


def test_every_v2_kernel_is_compiled_without_nrt():
    from numba.core.registry import CPUDispatcher

    from scalper.features import kernels_v2

    found = [
        (k, d)
        for k, d in vars(kernels_v2).items()
        if isinstance(d, CPUDispatcher) and d.__module__ == kernels_v2.__name__
    ]
    assert len(found) >= 10
    assert [k for k, d in found if d.targetoptions.get("_nrt", True)] == []


def test_kernel_sets_bind_each_set_s_kernels_once_and_refuse_an_unknown_set():
    from scalper.features import kernels, kernels_v2
    from scalper.features.kernel_sets import kernel_set

    assert kernel_set(1).run_until is kernels.run_until and kernel_set(2).run_until is kernels_v2.run_until
    assert kernel_set(2).peek_next_decision is kernels_v2.peek_next_decision
    with pytest.raises(ValueError, match="no kernels for feature set v3"):
        kernel_set(3)
    # run_until on a v2 state's arrays, through the set's kernels: the first decision has the v2 columns.
    data = random_walk_ticks(2, 200)
    state = FeatureState(feature_set=2)
    i, code = 0, 0
    while not code & CODE_DECISION and i < len(data):
        i, code = kernel_set(state.feature_set).run_until(*state.arrays(), *data.kernel_columns(), i, state.feat)
    assert code & CODE_DECISION
    assert state.feat[col["time_to_close_s"]] == -1.0 and state.feat[col["vol_regime_30s"]] == 1.0


def test_v2_peek_gives_the_next_decision_s_row_and_changes_no_state():
    from scalper.features.kernels_v2 import peek_next_decision

    data = random_walk_ticks(8, 1_500)
    state = FeatureState(feature_set=2)
    ist2, fst2 = state.v2.ist2, state.v2.fst2
    tmp = (np.empty_like(state.ist), np.empty_like(state.fst), np.empty_like(ist2), np.empty_like(fst2))
    peeked = np.empty(N_FEATURES_V2)
    arrays = state.arrays()
    checked = 0
    for i in range(len(data)):
        before = [a.copy() for a in arrays]
        g = peek_next_decision(*arrays[:3], *arrays[6:], peeked, *tmp)
        assert all(np.array_equal(a, b) for a, b in zip(before, arrays, strict=True))
        while True:
            code = step_v2(
                *arrays,
                int(data.ts_event[i]),
                int(data.kind[i]),
                int(data.side[i]),
                int(data.price_tick[i]),
                float(data.size[i]),
                int(data.flags[i]),
                state.feat,
            )
            if code & CODE_DECISION and state.ist[I_DECISION_TS] == g:
                assert np.array_equal(state.feat, peeked)
                checked += 1
            if not code & PRE_MASK:
                break
    assert checked > 100
