"""The deep book (sorted top view + ladder) against a dict reference, under random updates."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.features.ladder import EMPTY, deep_book_clear, deep_book_set, deep_levels, new_deep_book

# Prices span 41 ticks, ladders of 64 slots: nothing is ever dropped, so the book must be exact.
ops = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.integers(80, 120), st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0])),
    max_size=300,
)


def _reference(ref, s):
    return sorted(ref[s].items(), key=lambda kv: -kv[0] if s == 0 else kv[0])


@settings(max_examples=300)
@given(ops, st.sampled_from([1, 2, 4, 16]))
def test_deep_book_equals_dict_book_after_every_update(updates, top):
    book = new_deep_book(top, 64)
    px, sz, n, lpx, lsz, ln = book
    ref = {0: {}, 1: {}}
    for s, p, q in updates:
        assert deep_book_set(*book, s, p, q) == 0
        if q == 0.0:
            ref[s].pop(p, None)
        else:
            ref[s][p] = q
        for side in (0, 1):
            want = _reference(ref, side)
            assert list(zip(px[side, : n[side]].tolist(), sz[side, : n[side]].tolist(), strict=True)) == want[:top]
            ticks, sizes = deep_levels(px, sz, n, lpx, lsz, side)
            assert list(zip(ticks.tolist(), sizes.tolist(), strict=True)) == want
            assert ln[side] == max(0, len(want) - top) == np.count_nonzero(lpx[side] != EMPTY)


@settings(max_examples=100)
@given(ops)
def test_clear_empties_top_and_ladder(updates):
    book = new_deep_book(2, 64)
    for s, p, q in updates:
        deep_book_set(*book, s, p, q)
    px, sz, n, lpx, lsz, ln = book
    deep_book_clear(n, lpx, ln)
    assert n.tolist() == [0, 0] and ln.tolist() == [0, 0] and (lpx == EMPTY).all()
    deep_book_set(*book, 0, 100, 1.0)
    assert deep_levels(px, sz, n, lpx, lsz, 0)[0].tolist() == [100]


def test_level_sharing_a_slot_with_a_better_one_is_dropped_and_counted():
    book = new_deep_book(1, 8)
    px, sz, n, lpx, lsz, ln = book
    assert deep_book_set(*book, 0, 100, 1.0) == 0  # top view
    assert deep_book_set(*book, 0, 99, 2.0) == 0  # ladder slot 99 % 8
    assert deep_book_set(*book, 0, 91, 3.0) == 1  # same slot, worse: dropped
    assert deep_levels(px, sz, n, lpx, lsz, 0)[0].tolist() == [100, 99]
    assert deep_book_set(*book, 1, 200, 1.0) == 0
    assert deep_book_set(*book, 1, 209, 2.0) == 0
    assert deep_book_set(*book, 1, 201, 3.0) == 1  # better than 209: takes the slot, 209 is dropped
    assert deep_levels(px, sz, n, lpx, lsz, 1)[0].tolist() == [200, 201]


def test_promotion_finds_a_level_beyond_the_ladder_width():
    # The only ladder level sits farther than W ticks behind the top: a full pass must find it.
    book = new_deep_book(1, 8)
    px, sz, n, lpx, lsz, ln = book
    deep_book_set(*book, 0, 100, 1.0)
    deep_book_set(*book, 0, 80, 4.0)
    deep_book_set(*book, 0, 100, 0.0)
    assert (n[0], px[0, 0], sz[0, 0], ln[0]) == (1, 80, 4.0, 0)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        new_deep_book(4, 1000)
    with pytest.raises(ValueError, match="top_levels"):
        new_deep_book(0, 1024)
