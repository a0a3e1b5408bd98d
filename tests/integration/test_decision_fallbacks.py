"""Each fast path into a decision falls back to the general path, and decides exactly as it would.

The daemon's frame path (``engine/framepath.py``) takes only the depthUpdate frames it can scan; any
other goes to the feed's parser and :meth:`Daemon.on_events`. The same recorded session, with part of
its frames made unscannable (a JSON escape the scanner refuses, the same message to the parser), must
take the same decisions on the same feature rows, and trade the same. (The prepared decision's and the
batched replay's fallbacks: ``tests/unit/test_engine_core.py``, ``tests/unit/test_batched_replay.py``.)
"""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

USDM = "hftbacktest/binance_usdm"
FRAMES = 1500


def _recording(data_dir):
    from scalper.ingest.binance import Recording

    snapshot, buffered, frames = None, [], []
    for line in Recording([data_dir / USDM / "ethusdt_20240718.gz"]):
        if snapshot is None and b'"lastUpdateId"' in line.raw and b'"stream"' not in line.raw:
            snapshot = line.raw
        elif b"depthUpdate" in line.raw:
            (buffered if snapshot is None else frames).append(line.raw)
        if len(frames) == FRAMES:
            break
    return snapshot, buffered, frames


def _unscannable(raw: bytes) -> bytes:
    # "E" spelt as a JSON escape: the same message to the parser, refused by the frame scanner.
    out = raw.replace(b'"E":', b'"\\u0045":', 1)
    assert out != raw
    return out


async def _trade(data_dir, eth_models, tmp_path, general_every: int):
    """Run the session through a daemon, every ``general_every``-th frame unscannable (0: none); return
    the decisions taken (grid time, feature row bytes), the trading outcome and the general path's calls."""
    from scalper.engine.config import EngineConfig
    from scalper.engine.daemon import Daemon
    from scalper.ingest.binance import parse_message

    cfg = EngineConfig.model_validate(
        {
            "risk": {"take_profit_bps": 30.0, "stop_loss_bps": 10.0, "min_probability": 0.6},
            "daemon": {
                "market": "usdm",
                "symbol": "ETHUSDT",
                "tick_size": 0.01,
                "lot_size": 0.001,
                "model_dir": str(eth_models),
                "journal_path": str(tmp_path / "journal.jsonl"),
                "control_dir": str(tmp_path / "control"),
            },
        }
    )
    snapshot, buffered, frames = _recording(data_dir)
    daemon = Daemon(cfg)
    await daemon.journal.start()
    daemon.build_core(1)
    decisions = []

    def record(step):
        def recorded(g, feat, ts_recv):
            decisions.append((g, feat.tobytes()))
            step(g, feat, ts_recv)

        return recorded

    daemon.wrap_steps(decide=record)
    feed = daemon.feed
    general = feed.sink
    calls = [0]

    def counted(cols):
        calls[0] += 1
        general(cols)

    feed.sink = counted
    feed.sequencer.reset()
    for raw in buffered:
        feed.on_frame(raw, time.time_ns())
    feed.place_snapshot(parse_message(snapshot), time.time_ns())
    feed.flush()
    calls[0] = 0
    for k, raw in enumerate(frames):
        feed.on_frame(_unscannable(raw) if general_every and k % general_every == 0 else raw, time.time_ns())
        feed.flush()
        if daemon.journal.backlog:
            await daemon.journal.flush()
        await asyncio.sleep(0)
    await daemon.journal.close()
    risk, acc = daemon.risk, daemon.risk.account
    outcome = (
        risk.approved_count,
        dict(risk.reject_counts),
        acc.position,
        acc.realized_pnl,
        acc.fees_paid,
        daemon.venue.venue.next_order_id,
        daemon.metrics.engine_errors._value.get(),
    )
    return decisions, outcome, calls[0]


def test_frames_the_frame_path_cannot_scan_are_decided_by_the_general_path_as_by_it(data_dir, eth_models, tmp_path):
    (tmp_path / "fast").mkdir()
    (tmp_path / "mixed").mkdir()
    fast, fast_outcome, fast_general = asyncio.run(_trade(data_dir, eth_models, tmp_path / "fast", 0))
    mixed, mixed_outcome, mixed_general = asyncio.run(_trade(data_dir, eth_models, tmp_path / "mixed", 3))
    assert fast_general == 0 and mixed_general == FRAMES // 3  # each refused frame went to on_events
    assert len(fast) > 100 and mixed == fast  # the same decisions, on the same feature rows
    assert mixed_outcome == fast_outcome
    assert fast_outcome[0] > 0 and fast_outcome[-1] == 0  # entries approved, no engine error
