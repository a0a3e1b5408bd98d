"""benchmarks/peer_maker.py without the peer: fill matching, the quoting start, and a failed peer run."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scalper.backtest.maker_peer import MakerPeerParams
from scalper.benchmarks.peer_maker import (
    Comparison,
    PeerMakerError,
    execution_of,
    match_fills,
    run_peer,
    run_scalper,
    with_warmup,
)
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE, Instrument, TickData

INST = Instrument("TEST", "X", 0.01, 0.001, "hand-made")


def test_fills_match_as_multisets_and_the_rest_is_listed_in_order():
    a = [(10, 1, 100, 1), (10, 1, 100, 1), (20, -1, 101, 1), (30, 1, 99, 1)]
    b = [(10, 1, 100, 1), (20, -1, 101, 1), (25, -1, 101, 1)]
    matched, only_a, only_b = match_fills(a, b)
    assert matched == 2
    assert only_a == [(10, 1, 100, 1), (30, 1, 99, 1)]
    assert only_b == [(25, -1, 101, 1)]


def test_quoting_starts_after_the_warmup_on_the_grid():
    ts = np.array([1_000_000_123, 1_050_000_000], dtype=np.int64)
    data = TickData(
        INST,
        ts,
        ts,
        np.full(2, KIND_BOOK, dtype=np.uint8),
        np.array([1, -1], dtype=np.int8),
        np.array([100.0, 100.01]),
        np.array([1.0, 1.0]),
        np.zeros(2, dtype=np.uint8),
    )
    p = with_warmup(data, MakerPeerParams(), warmup_ns=5_000_000_000)
    assert p.quote_from_ns == 6_100_000_000  # 6.000000123 s rounded up to the 100 ms grid
    fixed = MakerPeerParams(quote_from_ns=42)
    assert with_warmup(data, fixed) is fixed


def test_a_failed_peer_run_names_the_command_and_its_last_words(tmp_path):
    # This interpreter has no hftbacktest: the peer script fails on its import.
    if _has_hftbacktest():
        pytest.skip("hftbacktest is importable here; the failure path needs an interpreter without it")
    with pytest.raises(PeerMakerError, match=r"peer_maker_hbt\.py.*exited 1.*hftbacktest"):
        run_peer(Path(sys.executable), [tmp_path / "x.gz"], INST, MakerPeerParams(), 1, 60.0)
    with pytest.raises(PeerMakerError, match="not found"):
        run_peer(tmp_path / "no-python", [tmp_path / "x.gz"], INST, MakerPeerParams(), 1, 60.0)


def _has_hftbacktest() -> bool:
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        return False
    return True


def _book_data() -> TickData:
    """A one-tick book at 100.00 / 100.01 (10 lots each), a sell trade through the bid at 0.03 s."""
    ts = np.array([0, 0, 30_000_000, 250_000_000], dtype=np.int64)
    return TickData(
        INST,
        ts,
        ts,
        np.array([KIND_BOOK, KIND_BOOK, KIND_TRADE, KIND_BOOK], dtype=np.uint8),
        np.array([1, -1, -1, 1], dtype=np.int8),
        np.array([100.0, 100.01, 99.99, 100.0]),
        np.array([0.01, 0.01, 0.001, 0.01]),
        np.zeros(4, dtype=np.uint8),
    )


def test_scalpers_side_keeps_its_fills_table_and_the_comparison_prints_its_execution_report():
    data = _book_data()
    side = run_scalper(data, MakerPeerParams(entry_ns=10, response_ns=10), repeat=1)
    assert side.keys() == [(30_000_000, 1, 10000, 1)]  # the buy at the bid, filled by the trade through it
    table, posted = side.detail
    assert posted == 3 and table["queue_at_post"].tolist() == [10.0]  # buy, sell; at 0.1 s a new buy
    rep = execution_of(data, side)
    assert (rep.fills, rep.maker_fills, rep.posted) == (1, 1, 3) and rep.fill_ratio == pytest.approx(1 / 3)
    peer = replace(side, name="hftbacktest", detail=None)
    assert execution_of(data, peer) is None
    c = Comparison(side, peer, 1, [], [], {}, rep)
    text = c.table()
    assert "identical fills: 1 = 100.0%" in text
    assert "## Execution (scalper)" in text and "| fill ratio (orders filled / posted) | 33.3% (1 / 3) |" in text


def test_the_peer_side_refuses_sampled_latencies(tmp_path):
    with pytest.raises(PeerMakerError, match="constant latencies only"):
        run_peer(Path(sys.executable), [tmp_path / "x.gz"], INST, MakerPeerParams(entry_ns=(1, 2)), 1, 60.0)
