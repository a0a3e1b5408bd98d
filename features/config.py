"""Configuration of the book, the feature windows and the decision grid."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeaturesConfig(_Section):
    grid_ms: float = Field(250.0, gt=0, description="decision grid step, ms of event time")
    top_levels: int = Field(64, ge=16, description="best levels per side kept sorted (features and fills read these)")
    ladder_ticks: int = Field(
        65536, ge=1024, description="ticks per side of the ladder for deeper levels (power of two)"
    )
    ring_capacity: int = Field(65536, ge=1024, description="events kept for the 30 s feature windows")
    set: int = Field(
        1,
        ge=1,
        le=2,
        description="feature set (features/registry.py): 1, or 2 = 1 + regime and microstructure columns; "
        "chosen once, at start, with the kernels that compute it",
    )

    @field_validator("ladder_ticks")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"ladder_ticks must be a power of two, got {v}")
        return v

    @property
    def grid_ns(self) -> int:
        return int(round(self.grid_ms * 1e6))
