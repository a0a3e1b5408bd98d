"""Configuration of the live Binance feed (the ``[feed]`` section): frame limits, number checks, retry pacing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from scalper.ingest.binance.levels import DEFAULT_PRICE_BAND, DEFAULT_TICK_TOLERANCE


class FeedConfig(BaseModel):
    """How the feed guards the book and paces its retries; every key has a unit in its description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_frame_bytes: int = Field(
        4 << 20,
        ge=64 << 10,
        description="largest websocket frame accepted, bytes"
        "; a larger one closes the connection (counted, then reconnect)",
    )
    price_band: float = Field(
        DEFAULT_PRICE_BAND,
        gt=1.0,
        description="a price must lie within [mid / price_band, mid * price_band] of the synced book, ratio "
        "(Binance books hold real levels from ~1% to ~1000% of the mid)",
    )
    tick_tolerance: float = Field(
        DEFAULT_TICK_TOLERANCE,
        gt=0,
        lt=0.5,
        description="how far from a whole number of ticks a price may be, ticks",
    )
    backoff_initial_s: float = Field(0.1, gt=0, description="first retry delay after a failed resync or reconnect, s")
    backoff_max_s: float = Field(10.0, gt=0, description="retry delays double up to this, s")
    backoff_reset_s: float = Field(
        10.0,
        ge=0,
        description="the book (or connection) must stay valid this long before the retry delay resets, s",
    )
    snapshot_wait_s: float = Field(
        1.0,
        ge=0,
        description="after a (re)subscribe, wait this long at most for a first diff before the REST snapshot, s",
    )
    log_interval_s: float = Field(
        10.0,
        ge=0,
        description="at most one log line per reason (reconnect, resync, rejected frame) this often, s",
    )
