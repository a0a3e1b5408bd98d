"""Configuration of labels, the walk-forward split, calibration and LightGBM training."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_BARRIERS = ("take_profit_bps", "stop_loss_bps", "latency_ms", "round_trip_fee_bps")


class LabelsConfig(_Section):
    kind: Literal["direction", "first_passage"] = Field(
        "direction",
        description="direction: did the mid move beyond a dead zone; first_passage: which of the trade's"
        " take-profit, stop-loss and time stop comes first (models/labels.py)",
    )
    horizons_s: list[float] = Field([5.0, 10.0, 30.0], min_length=1, description="prediction horizons, s")
    dead_zone_ticks: float | None = Field(
        None,
        ge=0,
        description="direction: flat band half-width, ticks; unset and no flat_share = half the median spread",
    )
    flat_share: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="direction: choose each horizon's dead zone so this share of training labels is flat",
    )
    take_profit_bps: float | None = Field(
        None, gt=0, description="first_passage: take-profit, bps of entry; unset = [risk] take_profit_bps"
    )
    stop_loss_bps: float | None = Field(
        None, gt=0, description="first_passage: stop-loss, bps of entry; unset = [risk] stop_loss_bps"
    )
    latency_ms: float | None = Field(
        None, ge=0, description="first_passage: order latency, ms; unset = [exec] latency_ms"
    )
    round_trip_fee_bps: float | None = Field(
        None, ge=0, description="first_passage: entry + exit fees, bps; unset = twice [exec] taker_fee_bps"
    )
    split: tuple[float, float, float] = Field(
        (0.6, 0.2, 0.2),
        description="train / validation / test shares of the time span (the test share is split among the folds)",
    )
    embargo_s: float | None = Field(None, ge=0, description="gap between split parts, s; unset = the longest horizon")

    @model_validator(mode="after")
    def _consistent(self) -> LabelsConfig:
        if any(h <= 0 for h in self.horizons_s):
            raise ValueError(f"horizons_s must be > 0, got {self.horizons_s}")
        if self.embargo_s is not None and self.embargo_s < max(self.horizons_s):
            raise ValueError(f"embargo_s={self.embargo_s} must be >= the longest horizon {max(self.horizons_s)}")
        if self.dead_zone_ticks is not None and self.flat_share is not None:
            raise ValueError("set dead_zone_ticks or flat_share, not both")
        if self.kind == "first_passage":
            for key in ("dead_zone_ticks", "flat_share"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to kind = 'direction', not 'first_passage'")
        else:
            for key in _BARRIERS:
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to kind = 'first_passage', not 'direction'")
        return self

    @property
    def embargo_ns(self) -> int:
        return int(round((self.embargo_s if self.embargo_s is not None else max(self.horizons_s)) * 1e9))

    def with_trade(
        self, take_profit_bps: float, stop_loss_bps: float, latency_ms: float, round_trip_fee_bps: float
    ) -> LabelsConfig:
        """Return a copy whose unset first-passage barriers take the trade's values (the [risk] and [exec]
        sections: one source of truth for the exit rule); a direction config is returned as it is."""
        if self.kind != "first_passage":
            return self
        given = dict(
            take_profit_bps=take_profit_bps,
            stop_loss_bps=stop_loss_bps,
            latency_ms=latency_ms,
            round_trip_fee_bps=round_trip_fee_bps,
        )
        return self.model_copy(update={k: v for k, v in given.items() if getattr(self, k) is None})


class TrainConfig(_Section):
    n_estimators: int = Field(100, ge=1, description="boosting rounds (trees per class)")
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(50, ge=1)
    early_stopping_rounds: int = Field(20, ge=0, description="0 disables early stopping on the validation span")
    seed: int = 7
    folds: int = Field(1, ge=1, description="walk-forward folds: test spans the [labels] test share is cut into")
    window: Literal["expanding", "rolling"] = Field(
        "expanding", description="walk-forward training window: everything before, or the [labels] train share"
    )
    calibration: Literal["temperature", "isotonic", "none"] = Field(
        "none",
        description="probability calibration fitted on the validation span, shipped in the ONNX graph",
    )
    sample_weights: Literal["uniqueness", "none"] = Field(
        "none", description="weight overlapping labels by their average uniqueness (AFML ch. 4)"
    )
    search: Literal["none", "optuna"] = Field(
        "none",
        description="optuna: choose num_leaves, learning_rate, min_child_samples and colsample_bytree per fold"
        " on an inner purged split of its training span (models/search.py; the 'research' extra)",
    )
    search_trials: int = Field(20, ge=1, description="search = 'optuna': trials per fold and horizon")
    regime_gate: Literal["none", "volatility"] = Field(
        "none",
        description="volatility: one LightGBM per volatility regime of the training span beside the pooled model,"
        " selected per row inside one ONNX graph (models/regime.py)",
    )
    regime_bins: int = Field(2, ge=2, le=3, description="regime_gate: regimes, cut at training-span quantiles")
