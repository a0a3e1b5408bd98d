"""Configuration of the execution side: order latency, the decision's compute time and fees."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ExecConfig(BaseModel):
    """How orders reach the (simulated) venue and what they cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(1.0, ge=0.0, description="decision-to-venue order latency, ms (event time in a backtest)")
    decision_compute_ns: int = Field(
        8000,
        ge=0,
        description="the decision's own compute time, ns, charged to the clock: orders from a decision at t"
        " are sent at t + this; default the daemon's measured flat tick-to-decision p50 (BENCHMARKS.md)",
    )
    taker_fee_bps: float = Field(0.5, ge=0.0, description="taker fee, bps of notional")
    maker_fee_bps: float = Field(
        0.0, allow_inf_nan=False, description="maker fee, bps of notional; negative is a rebate"
    )

    @model_validator(mode="after")
    def _maker_not_dearer(self) -> ExecConfig:
        # Posting instead of crossing only makes sense if it costs no more; a config saying otherwise is a typo.
        if self.maker_fee_bps > self.taker_fee_bps:
            raise ValueError(
                f"maker_fee_bps={self.maker_fee_bps} > taker_fee_bps={self.taker_fee_bps}: a maker fee above the"
                " taker fee is no venue's schedule"
            )
        return self
