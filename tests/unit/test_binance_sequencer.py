"""Binance order-book sequencer: the documented sync rules for spot and futures on hand-built ids."""

from __future__ import annotations

import numpy as np
import pytest

from scalper.ingest.binance.messages import DepthSnapshot, DepthUpdate, Market
from scalper.ingest.binance.sequencer import BinanceOrderBookSequencer, SyncReason, SyncState, continue_ids

EMPTY = np.empty((0, 2))


def spot(first: int, last: int) -> DepthUpdate:
    return DepthUpdate("BTCUSDT", 1, None, first, last, None, EMPTY, EMPTY)


def fut(first: int, last: int, prev: int) -> DepthUpdate:
    return DepthUpdate("BTCUSDT", 1, 1, first, last, prev, EMPTY, EMPTY)


def snap(last_update_id: int) -> DepthSnapshot:
    return DepthSnapshot(last_update_id, None, None, EMPTY, EMPTY)


def ids(diffs: list[DepthUpdate]) -> list[tuple[int, int]]:
    return [(d.first_update_id, d.final_update_id) for d in diffs]


def counts(seq: BinanceOrderBookSequencer) -> dict[str, int]:
    return {k.value: v for k, v in seq.counters.items() if v}


# -- spot: drop u <= L, first needs U <= L+1 <= u, then U == u_prev + 1 -------------------------


def test_spot_buffers_until_snapshot_then_drops_stale_and_applies_from_straddling():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    diffs = [spot(100, 104), spot(105, 109), spot(110, 114), spot(115, 118)]
    for d in diffs:
        assert seq.on_diff(d) == []
    assert seq.state is SyncState.AWAITING_SNAPSHOT and seq.buffered == 4
    out = seq.on_snapshot(snap(109))
    # u=109 <= L is stale (the snapshot has it); U=110 <= L+1 = 110 <= u=114 straddles.
    assert ids(out) == [(110, 114), (115, 118)]
    assert seq.state is SyncState.SYNCED and seq.last_update_id == 118
    assert counts(seq) == {"buffered": 4, "stale_dropped": 2}
    assert ids(seq.on_diff(spot(119, 120))) == [(119, 120)]


def test_spot_snapshot_inside_a_diff_range_applies_that_diff():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_diff(spot(100, 110))
    assert ids(seq.on_snapshot(snap(105))) == [(100, 110)]


def test_spot_snapshot_at_u_minus_one_of_last_buffered_is_not_stale():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_diff(spot(100, 110))
    seq.on_diff(spot(111, 111))
    assert ids(seq.on_snapshot(snap(110))) == [(111, 111)]


def test_spot_snapshot_newer_than_buffer_waits_for_straddling_diff():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_diff(spot(100, 104))
    assert seq.on_snapshot(snap(107)) == []
    assert seq.state is SyncState.SYNCED and seq.last_update_id == 107
    assert seq.on_diff(spot(105, 107)) == []  # u <= L: stale
    assert ids(seq.on_diff(spot(108, 112))) == [(108, 112)]
    assert counts(seq) == {"buffered": 1, "stale_dropped": 2}


def test_spot_first_diff_beyond_snapshot_is_snapshot_too_old():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_diff(spot(100, 104))
    seq.on_diff(spot(105, 109))
    assert seq.on_snapshot(snap(98)) == []  # U=100 > L+1 = 99: updates 99 are missing
    assert seq.state is SyncState.INVALID and seq.invalid_reason is SyncReason.SNAPSHOT_TOO_OLD
    book_u, diff = seq.rejection
    assert book_u == 98 and ids([diff]) == [(100, 104)]
    assert seq.counters[SyncReason.SNAPSHOT_TOO_OLD] == 1


def test_spot_empty_buffer_then_diff_beyond_snapshot_is_snapshot_too_old():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    assert seq.on_snapshot(snap(50)) == []
    assert seq.on_diff(spot(52, 60)) == []
    assert seq.invalid_reason is SyncReason.SNAPSHOT_TOO_OLD


def test_spot_u_equal_l_plus_one_boundary_straddles():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_snapshot(snap(99))
    assert ids(seq.on_diff(spot(100, 100))) == [(100, 100)]


def test_spot_gap_invalidates_and_counts():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_snapshot(snap(99))
    seq.on_diff(spot(100, 104))
    assert seq.on_diff(spot(106, 110)) == []  # 105 missing
    assert seq.state is SyncState.INVALID and seq.invalid_reason is SyncReason.GAP
    assert seq.rejection[0] == 104 and seq.last_update_id is None
    assert seq.on_diff(spot(111, 112)) == []
    assert counts(seq) == {"gaps": 1, "dropped_while_invalid": 1}


def test_spot_overlapping_diff_is_a_gap():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_snapshot(snap(99))
    seq.on_diff(spot(100, 104))
    seq.on_diff(spot(103, 108))
    assert seq.invalid_reason is SyncReason.GAP


def test_spot_repeated_diff_is_dropped_as_stale_not_a_gap():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_snapshot(snap(99))
    d = spot(100, 104)
    seq.on_diff(d)
    assert seq.on_diff(d) == []
    assert seq.state is SyncState.SYNCED
    assert ids(seq.on_diff(spot(105, 105))) == [(105, 105)]
    assert counts(seq) == {"stale_dropped": 1}


def test_gap_among_buffered_diffs_invalidates_at_snapshot():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_diff(spot(100, 104))
    seq.on_diff(spot(106, 110))
    assert seq.on_snapshot(snap(101)) == []
    assert seq.invalid_reason is SyncReason.GAP


# -- futures: drop u < L, first needs U <= L <= u, then pu == u_prev ----------------------------


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM])
def test_futures_keeps_diff_ending_at_snapshot_id_and_chains_by_pu(market):
    seq = BinanceOrderBookSequencer(market)
    diffs = [fut(100, 104, 90), fut(107, 109, 104), fut(113, 120, 109), fut(125, 126, 120)]
    for d in diffs:
        seq.on_diff(d)
    # u=104 < 109 stale; u=109 == L kept (futures: U <= L <= u), unlike spot.
    assert ids(seq.on_snapshot(snap(109))) == [(107, 109), (113, 120), (125, 126)]
    assert ids(seq.on_diff(fut(130, 131, 126))) == [(130, 131)]
    assert counts(seq) == {"buffered": 4, "stale_dropped": 1}


def test_futures_snapshot_between_u_and_next_u_uses_the_diff_containing_it():
    seq = BinanceOrderBookSequencer(Market.USDM)
    seq.on_diff(fut(100, 104, 90))
    seq.on_diff(fut(107, 115, 104))
    assert ids(seq.on_snapshot(snap(110))) == [(107, 115)]


def test_futures_first_diff_beyond_snapshot_is_snapshot_too_old():
    seq = BinanceOrderBookSequencer(Market.USDM)
    seq.on_diff(fut(107, 109, 104))
    assert seq.on_snapshot(snap(105)) == []
    assert seq.invalid_reason is SyncReason.SNAPSHOT_TOO_OLD


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM])
def test_futures_snapshot_at_a_diff_boundary_accepts_the_diff_whose_pu_is_the_snapshot_id(market):
    # The diff ending at L=109 arrived before the resync; the next one starts at U=113 > L but its
    # pu == L says it continues the snapshot exactly (the replay server's, and a venue's, snapshot
    # taken between two events).
    seq = BinanceOrderBookSequencer(market)
    assert seq.on_snapshot(snap(109)) == []
    assert ids(seq.on_diff(fut(113, 120, 109))) == [(113, 120)]
    assert seq.state is SyncState.SYNCED and seq.last_update_id == 120
    seq.reset()
    seq.on_diff(fut(113, 120, 109))
    assert ids(seq.on_snapshot(snap(109))) == [(113, 120)]


def test_futures_first_diff_beyond_snapshot_with_another_pu_is_still_too_old():
    seq = BinanceOrderBookSequencer(Market.USDM)
    seq.on_snapshot(snap(109))
    assert seq.on_diff(fut(113, 120, 110)) == []
    assert seq.invalid_reason is SyncReason.SNAPSHOT_TOO_OLD


def test_futures_pu_mismatch_is_a_gap_even_when_ids_look_contiguous():
    seq = BinanceOrderBookSequencer(Market.USDM)
    seq.on_snapshot(snap(100))
    seq.on_diff(fut(95, 104, 90))
    assert seq.on_diff(fut(105, 110, 103)) == []
    assert seq.invalid_reason is SyncReason.GAP
    assert seq.rejection[0] == 104


def test_futures_ids_need_not_be_contiguous():
    seq = BinanceOrderBookSequencer(Market.USDM)
    seq.on_snapshot(snap(100))
    seq.on_diff(fut(95, 104, 90))
    assert ids(seq.on_diff(fut(200, 250, 104))) == [(200, 250)]


def test_futures_rules_differ_from_spot_at_u_equal_l():
    f = BinanceOrderBookSequencer(Market.USDM)
    s = BinanceOrderBookSequencer(Market.SPOT)
    f.on_diff(fut(100, 109, 90))
    s.on_diff(spot(100, 109))
    assert ids(f.on_snapshot(snap(109))) == [(100, 109)]
    assert s.on_snapshot(snap(109)) == []
    assert s.state is SyncState.SYNCED and s.counters[SyncReason.STALE_DROPPED] == 1


# -- owner actions ------------------------------------------------------------------------------


def test_invalidate_crossed_then_reset_resyncs():
    seq = BinanceOrderBookSequencer(Market.USDM)
    seq.on_snapshot(snap(100))
    seq.on_diff(fut(95, 104, 90))
    seq.invalidate(SyncReason.CROSSED)
    assert seq.state is SyncState.INVALID and seq.invalid_reason is SyncReason.CROSSED
    assert seq.rejection is None
    seq.reset()
    assert seq.state is SyncState.AWAITING_SNAPSHOT and seq.invalid_reason is None and seq.last_update_id is None
    seq.on_diff(fut(300, 310, 290))
    assert ids(seq.on_snapshot(snap(305))) == [(300, 310)]
    assert counts(seq) == {"crossed": 1, "resyncs": 1, "buffered": 1}


def test_invalidate_rejects_a_non_invalidating_reason():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    with pytest.raises(ValueError, match="BUFFERED"):
        seq.invalidate(SyncReason.BUFFERED)


def test_on_snapshot_outside_awaiting_state_raises():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_snapshot(snap(1))
    with pytest.raises(RuntimeError, match="reset"):
        seq.on_snapshot(snap(2))


def test_reset_clears_buffer():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_diff(spot(1, 2))
    seq.reset()
    assert seq.buffered == 0
    assert seq.on_snapshot(snap(10)) == []


def test_full_buffer_discards_oldest_and_counts():
    seq = BinanceOrderBookSequencer(Market.SPOT, max_buffer=2)
    for first in (100, 105, 110):
        seq.on_diff(spot(first, first + 4))
    assert seq.buffered == 2 and seq.counters[SyncReason.BUFFER_OVERFLOW] == 1
    assert ids(seq.on_snapshot(snap(106))) == [(105, 109), (110, 114)]


def test_max_buffer_must_be_positive():
    with pytest.raises(ValueError):
        BinanceOrderBookSequencer(Market.SPOT, max_buffer=0)


# -- continue_ids: the hot path's shortcut must agree with on_diff or change nothing -------------


def test_continue_ids_accepts_only_a_plain_continuation_and_otherwise_changes_nothing():
    seq = BinanceOrderBookSequencer(Market.USDM)
    assert not continue_ids(seq.ids, 100, 104, 90)  # awaiting the snapshot: on_diff buffers it
    seq.on_snapshot(snap(100))
    assert not continue_ids(seq.ids, 95, 104, 90)  # first diff on the snapshot: on_diff decides
    assert ids(seq.on_diff(fut(95, 104, 90))) == [(95, 104)]
    assert continue_ids(seq.ids, 105, 110, 104) and seq.last_update_id == 110
    before = counts(seq)
    assert not continue_ids(seq.ids, 105, 110, 104)  # stale: left to on_diff, which counts it
    assert not continue_ids(seq.ids, 115, 120, 111)  # gap: left to on_diff, which invalidates
    assert seq.state is SyncState.SYNCED and seq.last_update_id == 110 and counts(seq) == before
    assert seq.on_diff(fut(115, 120, 111)) == [] and seq.invalid_reason is SyncReason.GAP


def test_continue_ids_on_spot_chains_by_first_id():
    seq = BinanceOrderBookSequencer(Market.SPOT)
    seq.on_snapshot(snap(100))
    assert ids(seq.on_diff(spot(99, 103))) == [(99, 103)]
    assert continue_ids(seq.ids, 104, 106, -1) and seq.last_update_id == 106
    assert not continue_ids(seq.ids, 108, 109, -1) and seq.last_update_id == 106
