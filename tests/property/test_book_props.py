from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.lowlevel.book import SET_OVERFLOW, book_set, new_book

ops = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.integers(90, 110), st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0])),
    max_size=200,
)


def _reference_side(ref, s):
    return sorted(ref[s].items(), key=lambda kv: -kv[0] if s == 0 else kv[0])


@settings(max_examples=200, deadline=None)
@given(ops)
def test_book_matches_dict_reference_after_every_update(updates):
    px, sz, n = new_book(64)
    ref = {0: {}, 1: {}}
    for s, p, q in updates:
        book_set(px, sz, n, s, p, q)
        if q == 0.0:
            ref[s].pop(p, None)
        else:
            ref[s][p] = q
        for side in (0, 1):
            want = _reference_side(ref, side)
            got = list(zip(px[side, : n[side]].tolist(), sz[side, : n[side]].tolist(), strict=True))
            assert got == want


@settings(max_examples=200, deadline=None)
@given(ops)
def test_small_book_holds_correct_sizes_in_order_and_counts_overflow(updates):
    px, sz, n = new_book(4)
    ref = {0: {}, 1: {}}
    overflows = 0
    for s, p, q in updates:
        overflows += book_set(px, sz, n, s, p, q) == SET_OVERFLOW
        if q == 0.0:
            ref[s].pop(p, None)
        else:
            ref[s][p] = q
        for side in (0, 1):
            levels = px[side, : n[side]].tolist()
            assert levels == sorted(levels, reverse=(side == 0))
            assert len(set(levels)) == len(levels)
            for k, p_ in enumerate(levels):
                assert ref[side][p_] == sz[side, k]
    if max(len(ref[0]), len(ref[1])) > 4:
        assert overflows > 0


batches = st.lists(
    st.tuples(
        st.sampled_from([0, 1]),
        st.lists(st.tuples(st.integers(80, 120), st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0])), max_size=30),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(batches)
def test_merging_a_message_equals_setting_its_levels_one_by_one(messages):
    import numpy as np

    from scalper.lowlevel.book import book_merge

    seq = new_book(64)
    merged = new_book(64)
    tmp_px, tmp_sz = np.zeros(64, dtype=np.int64), np.zeros(64, dtype=np.float64)
    for s, levels, descending in messages:
        # Venues send one message's levels sorted; duplicates and disorder take the fallback path.
        levels = sorted(dict(levels).items(), reverse=descending) if len(levels) % 3 else levels
        ticks = np.array([p for p, _ in levels], dtype=np.int64)
        sizes = np.array([q for _, q in levels], dtype=np.float64)
        for p, q in zip(ticks, sizes, strict=True):
            book_set(*seq, s, p, q)
        book_merge(*merged, s, ticks, sizes, tmp_px, tmp_sz)
        for side in (0, 1):
            k = int(seq[2][side])
            assert int(merged[2][side]) == k
            assert merged[0][side, :k].tolist() == seq[0][side, :k].tolist()
            assert merged[1][side, :k].tolist() == seq[1][side, :k].tolist()
