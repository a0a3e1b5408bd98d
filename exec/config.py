"""Configuration of the execution side: order latency, the decision's compute time, fees and the queue model."""

from __future__ import annotations

from typing import Literal

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
    response_latency_ms: float = Field(
        0.0, ge=0.0, description="maker mode: venue-to-engine latency of every answer and fill, ms (event time)"
    )
    queue_model: Literal["risk_averse", "prob_power", "prob_log", "prob_power2", "prob_log2", "prob_power3"] = Field(
        "risk_averse",
        description="maker mode: how cancellations at a resting order's price move it up its queue (exec/queue.py:"
        " risk_averse never; the prob_* models are hftbacktest's ProbQueueModel functions)",
    )
    queue_param: float = Field(
        3.0, gt=0.0, allow_inf_nan=False, description="the prob_power* models' exponent (hftbacktest's examples: 2, 3)"
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
