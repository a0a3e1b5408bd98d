import numpy as np

from scalper.lowlevel.book import (
    ASK,
    BID,
    SET_OK,
    SET_OVERFLOW,
    book_clear,
    book_set,
    is_crossed,
    is_two_sided,
    new_book,
    top_levels,
)


def test_book_set_keeps_bids_descending_and_asks_ascending():
    px, sz, n = new_book(8)
    for p, q in [(100, 1.0), (102, 2.0), (101, 3.0)]:
        book_set(px, sz, n, BID, p, q)
    for p, q in [(105, 1.0), (103, 2.0), (104, 3.0)]:
        book_set(px, sz, n, ASK, p, q)
    assert px[BID, : n[BID]].tolist() == [102, 101, 100]
    assert sz[BID, : n[BID]].tolist() == [2.0, 3.0, 1.0]
    assert px[ASK, : n[ASK]].tolist() == [103, 104, 105]


def test_book_set_zero_size_deletes_level_and_unknown_delete_is_noop():
    px, sz, n = new_book(8)
    book_set(px, sz, n, BID, 100, 1.0)
    book_set(px, sz, n, BID, 99, 2.0)
    assert book_set(px, sz, n, BID, 98, 0.0) == SET_OK
    assert n[BID] == 2
    book_set(px, sz, n, BID, 100, 0.0)
    assert px[BID, : n[BID]].tolist() == [99]


def test_book_set_existing_level_replaces_size():
    px, sz, n = new_book(8)
    book_set(px, sz, n, ASK, 100, 1.0)
    book_set(px, sz, n, ASK, 100, 7.5)
    assert n[ASK] == 1 and sz[ASK, 0] == 7.5


def test_full_book_evicts_worst_level_and_reports_overflow():
    px, sz, n = new_book(3)
    for p in (100, 99, 98):
        book_set(px, sz, n, BID, p, 1.0)
    assert book_set(px, sz, n, BID, 101, 1.0) == SET_OVERFLOW
    assert px[BID, :3].tolist() == [101, 100, 99]
    assert book_set(px, sz, n, BID, 90, 1.0) == SET_OVERFLOW
    assert px[BID, :3].tolist() == [101, 100, 99]


def test_crossed_and_two_sided_predicates():
    px, sz, n = new_book(4)
    assert not is_two_sided(n)
    book_set(px, sz, n, BID, 100, 1.0)
    book_set(px, sz, n, ASK, 101, 1.0)
    assert is_two_sided(n) and not is_crossed(px, n)
    book_set(px, sz, n, BID, 101, 1.0)
    assert is_crossed(px, n)
    book_clear(n)
    assert not is_two_sided(n)


def test_top_levels_pads_missing_levels_with_zero():
    px, sz, n = new_book(4)
    book_set(px, sz, n, BID, 100, 2.0)
    bp, bq, ap, aq = top_levels(px, sz, n, 3)
    assert bp.tolist() == [100, 0, 0] and bq.tolist() == [2.0, 0.0, 0.0]
    assert ap.tolist() == [0, 0, 0] and np.all(aq == 0)
