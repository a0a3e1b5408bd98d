"""The kernels' state slots and feature columns come from one table each (features/state_layout.py)."""

from __future__ import annotations

import pytest

from scalper.features import state_layout as layout
from scalper.features.kernels import BookArrays, FeatureState, WindowArrays
from scalper.features.registry import FEATURE_NAMES, FEATURE_NAMES_V2, N_FEATURES, N_FEATURES_V2, WINDOWS_NS
from scalper.risk.market import MarketState


def _constants(prefix: str) -> dict[str, int]:
    return {k: v for k, v in vars(layout).items() if k.startswith(prefix) and isinstance(v, int)}


def _widths(prefix: str, size: int) -> dict[str, int]:
    # Each slot's width: the distance to the next slot (the last one runs to the array's end).
    starts = sorted(_constants(prefix).items(), key=lambda kv: kv[1])
    ends = [v for _, v in starts[1:]] + [size]
    return {k: end - v for (k, v), end in zip(starts, ends, strict=True)}


def test_every_slot_and_column_is_a_plain_int_numba_compiles_in_as_a_constant():
    names = [k for k in vars(layout) if k.split("_")[0] in ("I", "F", "C", "COL", "N", "W")]
    assert len(names) > 50
    assert [k for k in names if type(getattr(layout, k)) is not int] == []


def test_int_slots_tile_the_int_state_without_overlap():
    widths = _widths("I_", layout.N_ISTATE)
    assert widths.pop("I_TAIL") == len(WINDOWS_NS)
    assert set(widths.values()) == {1}


def test_float_slots_tile_the_float_state_and_window_slots_are_distinct():
    widths = _widths("F_", layout.N_FSTATE)
    assert widths.pop("F_SUM") == widths.pop("F_NONZERO") == len(WINDOWS_NS) * layout.N_CH
    assert set(widths.values()) == {1}
    sums = {layout.sum_slot(w, c) for w in range(layout.N_WINDOWS) for c in range(layout.N_CH)}
    nonzero = {layout.nonzero_slot(w, c) for w in range(layout.N_WINDOWS) for c in range(layout.N_CH)}
    assert sums == set(range(layout.F_SUM, layout.F_NONZERO))
    assert nonzero == set(range(layout.F_NONZERO, layout.N_FSTATE))
    assert [layout.tail_slot(w) for w in range(layout.N_WINDOWS)] == list(range(layout.I_TAIL, layout.I_PREV_BID))


def test_every_registry_feature_has_its_column_constant_at_its_registry_position():
    cols = _constants("COL_")
    v1 = {k: v for k, v in cols.items() if v < N_FEATURES}
    assert sorted(v1.values()) == list(range(N_FEATURES))
    for name in FEATURE_NAMES:
        assert cols[f"COL_{name.upper()}"] == FEATURE_NAMES.index(name) == layout.FEATURE_INDEX[name]
    assert layout.FEATURE_INDEX_V2 == {name: j for j, name in enumerate(FEATURE_NAMES_V2)}


def test_v2_columns_cover_the_v2_extra_features_with_their_side_and_level_neighbours():
    firsts = {v for v in _constants("COL_").values() if v >= N_FEATURES}
    widths = {layout.COL_QUEUE_DEPLETION: 2, layout.COL_ADD_RATE: 2, layout.COL_CANCEL_RATE: 2, layout.COL_OFI_L2: 4}
    covered = sorted(c + k for c in firsts for k in range(widths.get(c, 1)))
    assert covered == list(range(N_FEATURES, N_FEATURES_V2))


def test_v2_slots_tile_their_own_arrays():
    iw = _widths("I2_", layout.N_ISTATE2)
    assert iw.pop("I2_TAIL") == layout.N_WINDOWS2 and iw.pop("I2_SIGNS") == 50
    assert iw.pop("I2_PENDING_PX") == iw.pop("I2_PREV_N") == 2 and iw.pop("I2_PREV_PX") == 10
    assert set(iw.values()) == {1}
    fw = _widths("F2_", layout.N_FSTATE2)
    assert fw.pop("F2_SUM") == fw.pop("F2_NONZERO") == layout.N_WINDOWS2 * layout.N_CH2
    assert fw.pop("F2_ACC") == layout.N_CH2 and fw.pop("F2_PREV_SZ") == 10 and fw.pop("F2_PENDING_VOL") == 2
    assert set(fw.values()) == {1}
    sums = {layout.sum2_slot(w, c) for w in range(layout.N_WINDOWS2) for c in range(layout.N_CH2)}
    assert sums == set(range(layout.F2_SUM, layout.F2_NONZERO))


def test_windows_are_looked_up_by_length_and_a_missing_one_is_refused():
    assert [WINDOWS_NS[w] for w in (layout.W_1S, layout.W_5S, layout.W_30S)] == [10**9, 5 * 10**9, 30 * 10**9]
    with pytest.raises(ValueError, match="no 2000000000 ns window"):
        layout.window_index(2_000_000_000)


def test_book_accessors_read_the_state_from_python_as_risk_sees_it():
    st = FeatureState()
    st.ist[layout.I_LAST_BOOK_TS], st.ist[layout.I_IS_VALID] = 1_700_000_000_123_456_789, 1
    assert layout.last_book_ts(st.ist) == 1_700_000_000_123_456_789
    assert layout.book_is_valid(st.ist) and st.is_valid
    market = MarketState.of_book(1_700_000_000_200_000_000, st.px, st.n, st.ist, 0.01)
    assert (market.last_event_ts_ns, market.is_book_valid) == (1_700_000_000_123_456_789, True)
    st.ist[layout.I_IS_VALID] = 0
    assert not layout.book_is_valid(st.ist)


def test_the_state_records_are_the_arrays_the_per_event_kernels_take_one_by_one():
    st = FeatureState(ring_capacity=64)
    names = BookArrays._fields + WindowArrays._fields
    assert names == ("px", "sz", "n", "lpx", "lsz", "ln", "ist", "fst", "rb_ts", "rb_val")
    flat = st.arrays()
    assert all(a is b for a, b in zip(flat, (*st.book, *st.windows), strict=True))
    assert all(getattr(st, name) is a for name, a in zip(names, flat, strict=True))
    assert st.windows.ist.shape == (layout.N_ISTATE,) and st.windows.rb_val.shape == (64, layout.N_CH)
