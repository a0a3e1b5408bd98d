"""benchmarks/peer_maker.py without the peer: fill matching, the quoting start, and a failed peer run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from scalper.backtest.maker_peer import MakerPeerParams
from scalper.benchmarks.peer_maker import PeerMakerError, match_fills, run_peer, with_warmup
from scalper.ingest.tickfile import KIND_BOOK, Instrument, TickData

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
