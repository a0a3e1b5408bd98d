"""Engine configuration: one validated TOML file; every default is defined once, here or in the section's own model."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from scalper.exec.config import ExecConfig
from scalper.features.config import FeaturesConfig
from scalper.ingest.binance.config import FeedConfig
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.risk.config import RiskConfig


class ConfigError(ValueError):
    """The config file cannot be read or fails validation; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategyConfig(_Section):
    """How a model call becomes orders (chosen once per run: ``mode``)."""

    mode: Literal["taker", "maker"] = Field(
        "taker",
        description="taker: marketable IOC entries and exits; maker: post the entry and the take-profit"
        " (post-only), cross only to stop a loss or at the time stop (engine/maker.py)",
    )
    limit_slippage_bps: float = Field(5.0, ge=0, description="how far past the touch an IOC limit price goes, bps")
    inside_min_spread_ticks: int = Field(
        0,
        ge=0,
        description="maker: post one tick inside the touch when the spread is at least this many ticks"
        " (0: always join the touch; below 2 the improved price could cross)",
    )
    queue_window_s: float = Field(
        60.0,
        gt=0,
        description="maker: trailing window of the traded-volume rate the queue rule reads, s (engine/maker.py)",
    )

    @field_validator("inside_min_spread_ticks")
    @classmethod
    def _inside_needs_room(cls, ticks: int) -> int:
        if ticks == 1:
            raise ValueError("1 tick of spread leaves no price inside the touch: use 0 (off) or >= 2")
        return ticks


class BacktestConfig(_Section):
    periods_per_year: float = Field(252 * 390, gt=0, description="1-minute periods per year used to annualise Sharpe")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ``::1``); a host name is not
    resolved here, so any other name counts as reachable from other hosts."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DaemonConfig(_Section):
    """What ``scalper run`` trades and where it keeps state. Secrets never go here: see the README."""

    mode: Literal["paper"] = Field("paper", description="paper: fills simulated against the live book")
    market: Literal["spot", "usdm", "coinm"] = "usdm"
    symbol: str = "BTCUSDT"
    tick_size: float = Field(0.1, gt=0, description="price increment, quote currency")
    lot_size: float = Field(0.001, gt=0, description="size increment, base units")
    ws_url: str = Field("wss://fstream.binance.com", description="websocket base URL (combined streams)")
    rest_url: str = Field("https://fapi.binance.com", description="REST base URL (depth snapshot)")
    model_dir: str = Field("models/btcusdt", description="directory of .onnx models and cards")
    # Before metrics_host: its validator reads this flag.
    metrics_public: bool = Field(
        False,
        description="allow a metrics_host other hosts can reach (/metrics carries positions and PnL)"
        "; the daemon logs a warning",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="address of the /metrics endpoint; loopback unless metrics_public = true"
    )
    metrics_port: int = Field(9464, ge=0, le=65535, description="0 picks a free port")
    journal: Literal["file", "redis"] = "file"
    journal_path: str = Field("state/journal.jsonl", description="append-only journal file (journal = file)")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for the journal and the halt key")
    stream_key: str = Field("scalper:journal", description="Redis stream of the journal")
    halt_key: str = Field("scalper:halt", description="Redis key polled each second: active | reducing_only | halted")
    journal_fallback_path: str = Field(
        "state/journal-fallback.jsonl",
        description="journal = redis: where a bounded shutdown puts records Redis could not take",
    )
    journal_mark_path: str = Field(
        "state/journal-durable.mark",
        description="journal = redis: the highest seq seen durable in the stream; a start whose stream ends"
        " before it refuses",
    )
    control_dir: str = Field(
        "state/control", description="journal = file: directory `scalper control` drops commands into"
    )
    shutdown_timeout_s: float = Field(
        3.0, gt=0, le=60, description="SIGTERM: longest wait for the journal store before the file fallback, s"
    )
    keep_warm_ms: float = Field(
        1.0,
        ge=0,
        description="between frames, re-touch the hot path's code and data this often (0: off); see BENCHMARKS.md",
    )
    prepare_decisions: bool = Field(
        True,
        description="while flat, predict the next grid point's decision between frames,"
        " so the frame that reveals it needs no model call",
    )

    @field_validator("metrics_host")
    @classmethod
    def _loopback_unless_public(cls, host: str, info: ValidationInfo) -> str:
        if not is_loopback(host) and not info.data.get("metrics_public", False):
            raise ValueError(
                f"{host!r} is not a loopback address: /metrics would be open to other hosts; "
                "set daemon.metrics_public = true to allow it"
            )
        return host

    @field_validator("redis_url")
    @classmethod
    def _no_password_in_url(cls, url: str) -> str:
        # Secrets live in the environment (SCALPER_REDIS_PASSWORD), never in a config file.
        if urlsplit(url).password is not None:
            raise ValueError("holds a password: set SCALPER_REDIS_PASSWORD in the environment instead")
        return url


class EngineConfig(_Section):
    """The whole config; each section's keys are documented by its Field descriptions."""

    features: FeaturesConfig = FeaturesConfig()
    labels: LabelsConfig = LabelsConfig()
    train: TrainConfig = TrainConfig()
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskConfig = RiskConfig()
    exec: ExecConfig = ExecConfig()
    backtest: BacktestConfig = BacktestConfig()
    daemon: DaemonConfig = DaemonConfig()
    feed: FeedConfig = FeedConfig()

    def check_tradable(self, where: str) -> None:
        """Refuse settings that training accepts but ``where`` (the daemon, the backtest) cannot trade with.

        Feature set 2 trains and evaluates, but the engine's replay and frame kernels run set 1; maker
        mode needs the passive simulated exchange, which only the backtest has.

        Raises
        ------
        ConfigError
            Naming the key, its value and what to set instead.
        """
        if self.features.set != 1:
            raise ConfigError(
                f"{where}: [features] set = {self.features.set} is for training and evaluation in this version;"
                " the engine trades feature set 1 (set = 1)"
            )
        if where == "daemon" and self.strategy.mode != "taker":
            raise ConfigError(
                f"daemon: [strategy] mode = {self.strategy.mode!r} needs the passive simulated exchange, which only"
                " the backtest has; the paper daemon trades mode = 'taker'"
            )


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
