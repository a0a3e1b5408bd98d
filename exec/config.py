"""Configuration of the execution side: order latency and fees."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ExecConfig(BaseModel):
    """How orders reach the (simulated) venue and what they cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(1.0, ge=0.0, description="decision-to-venue order latency, ms (event time in a backtest)")
    taker_fee_bps: float = Field(0.5, ge=0.0, description="taker fee, bps of notional")
