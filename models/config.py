"""Configuration of labels, the time split and LightGBM training."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelsConfig(_Section):
    horizons_s: list[float] = Field([5.0, 10.0, 30.0], min_length=1, description="prediction horizons, s")
    dead_zone_ticks: float | None = Field(
        None, ge=0, description="flat band half-width, ticks; unset = half the median spread"
    )
    split: tuple[float, float, float] = Field(
        (0.6, 0.2, 0.2), description="train / validation / test fractions of the time span"
    )
    embargo_s: float | None = Field(None, ge=0, description="gap between split parts, s; unset = the longest horizon")

    @model_validator(mode="after")
    def _embargo_covers_horizons(self) -> LabelsConfig:
        if self.embargo_s is not None and self.embargo_s < max(self.horizons_s):
            raise ValueError(f"embargo_s={self.embargo_s} must be >= the longest horizon {max(self.horizons_s)}")
        if any(h <= 0 for h in self.horizons_s):
            raise ValueError(f"horizons_s must be > 0, got {self.horizons_s}")
        return self

    @property
    def embargo_ns(self) -> int:
        return int(round((self.embargo_s if self.embargo_s is not None else max(self.horizons_s)) * 1e9))


class TrainConfig(_Section):
    n_estimators: int = Field(100, ge=1, description="boosting rounds (trees per class)")
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(50, ge=1)
    early_stopping_rounds: int = Field(20, ge=0, description="0 disables early stopping on the validation span")
    seed: int = 7
