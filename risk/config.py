"""Risk configuration: Kelly sizing inputs and hard pre-trade limits, one source of truth per default."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RiskConfig(BaseModel):
    """Kelly sizing parameters and pre-trade limits for one instrument.

    Unknown keys, NaN and infinite values fail validation (``pydantic.ValidationError``),
    so a typo in a TOML file never silently falls back to a default or disables a limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kelly_fraction: float = Field(
        0.25,
        gt=0.0,
        le=1.0,
        description="Fraction of the full Kelly bet to stake (fractional Kelly, Thorp 2006); 1 is full Kelly.",
    )
    take_profit_bps: float = Field(
        10.0, gt=0.0, description="Take-profit distance from the entry price, bps; the win of the Kelly bet."
    )
    stop_loss_bps: float = Field(
        10.0, gt=0.0, description="Stop-loss distance from the entry price, bps; the loss of the Kelly bet."
    )
    min_probability: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Smallest model win probability that may size an entry; 0 leaves it to Kelly and fees.",
    )
    max_position: float = Field(10.0, gt=0.0, description="Largest absolute position, base units.")
    max_order_notional: float = Field(
        100_000.0, gt=0.0, description="Largest notional of one order (qty x limit price), quote currency."
    )
    max_orders_per_second: int = Field(
        5,
        ge=1,
        le=10_000,
        description="Most entry orders approved in any trailing 1 s of event time; exits are exempt. At most "
        "10,000: the risk layer keeps that many approval times in a preallocated window.",
    )
    stale_book_ms: float = Field(
        5000.0, gt=0.0, description="Refuse entries when the last book event is older than this, ms."
    )
    max_spread_ticks: int = Field(
        100, ge=1, description="Refuse entries when the bid-ask spread is wider than this, ticks."
    )
    max_drawdown: float = Field(
        10_000.0,
        gt=0.0,
        description="Peak-to-current equity loss that trips the kill switch to reducing-only, quote currency.",
    )
    initial_equity: float = Field(
        1_000_000.0, gt=0.0, description="Account equity at start, quote currency; Kelly stakes a fraction of it."
    )
