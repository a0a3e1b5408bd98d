"""Engine configuration: one validated TOML file; every default is defined once, here or in the section's own model."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scalper.exec.config import ExecConfig
from scalper.features.config import FeaturesConfig
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.risk.config import RiskConfig


class ConfigError(ValueError):
    """The config file cannot be read or fails validation; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategyConfig(_Section):
    limit_slippage_bps: float = Field(5.0, ge=0, description="how far past the touch an IOC limit price goes, bps")


class BacktestConfig(_Section):
    periods_per_year: float = Field(252 * 390, gt=0, description="1-minute periods per year used to annualise Sharpe")


class EngineConfig(_Section):
    """The whole config; each section's keys are documented by its Field descriptions."""

    features: FeaturesConfig = FeaturesConfig()
    labels: LabelsConfig = LabelsConfig()
    train: TrainConfig = TrainConfig()
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskConfig = RiskConfig()
    exec: ExecConfig = ExecConfig()
    backtest: BacktestConfig = BacktestConfig()


def load_config(path: str | Path | None) -> EngineConfig:
    """Read and validate a TOML config; ``None`` gives the defaults.

    Raises
    ------
    ConfigError
        If the file is missing or not TOML, a key is unknown, or a value is out of range; the
        message names the file and the dotted key.
    """
    if path is None:
        return EngineConfig()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return EngineConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from exc
