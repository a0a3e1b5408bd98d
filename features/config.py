"""Configuration of the book, the feature windows and the decision grid."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeaturesConfig(_Section):
    grid_ms: float = Field(250.0, gt=0, description="decision grid step, ms of event time")
    book_capacity: int = Field(2048, ge=16, description="book levels kept per side")
    ring_capacity: int = Field(65536, ge=1024, description="events kept for the 30 s feature windows")

    @property
    def grid_ns(self) -> int:
        return int(round(self.grid_ms * 1e6))
