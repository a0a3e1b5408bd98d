"""Sweeps: the purged walk-forward over a grid of label, model and risk settings across tick files.

API (used by ``scalper sweep``, ``engine/sweep_cli.py``): :func:`load_sweep` reads and validates a sweep
file into a :class:`SweepSpec`; :func:`sweep_tasks` expands it into one :class:`SweepTask` per
configuration x file set x walk-forward fold (:func:`config_tasks`: one configuration's); :func:`run_task`
trains that fold's models alone (``models.train.train_models`` with ``fold``) in a temporary directory
and scores them on the fold's test span with ``models.evaluation.evaluate_horizon`` (and, with
``backtest``, replays the span through the engine), returning one row; :func:`runner` runs tasks in this
process or as Ray tasks, :func:`run_sweep` runs a list of them and returns the rows in task order as
one table.

A sweep file (TOML)::

    base = "default.toml"          # optional engine config the grid overrides (relative to this file)
    files = ["a.parquet", ["b1.parquet", "b2.parquet"]]  # file sets: one file, or sessions in time order
    folds = 2                      # optional: [train] folds for every configuration
    seed = 7                       # [train] seed and the bootstrap's seed for every task
    replicates = 200               # block-bootstrap resamples of each fold's intervals
    backtest = false               # also replay each fold's test span through the engine (bt.* columns)
    [grid]
    "labels.flat_share" = [0.2, 0.34]   # dotted engine-config key = the values to try
    "train.num_leaves" = [15, 31]

The configurations are the grid's cartesian product, in key order then value order; with
``search = "optuna"`` they are Optuna trials instead (``backtest.sweep_search``: the grid's lists become
choices and ``[space]`` holds numeric ranges, e.g. ``"risk.take_profit_bps" = {low = 5, high = 30}``).
Seeded: every random choice (LightGBM, the Optuna samplers, the bootstrap) takes the sweep's seed and
each task is a pure function of its :class:`SweepTask`, so a serial run and a Ray run give the same
table except the ``wall_s`` column. Ray is the optional extra ``distributed``
(``pip install -e '.[distributed]'``); without it the sweep runs serially.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scalper.backtest.driver import run_backtest
from scalper.backtest.report import build_metrics
from scalper.engine.config import EngineConfig
from scalper.features.batch import compute_features
from scalper.features.kernels import FeatureState
from scalper.ingest import tickfile
from scalper.models.evaluate import _horizon_rows, training_prior
from scalper.models.evaluation import HorizonEvaluation, evaluate_horizon
from scalper.models.inference import ModelSet, load_model_dir
from scalper.models.search import SPACE
from scalper.models.touchpath import touch_path
from scalper.models.train import TrainingError, train_models

WALL_COLUMNS = ("wall_s",)
"""Columns that differ between runs of the same sweep (timings): left out when comparing tables."""


class SweepError(ValueError):
    """A sweep file cannot be read or fails validation; the message names the file and the key."""


def _check_key(key: str) -> None:
    section, _, name = key.partition(".")
    fields = EngineConfig.model_fields
    if section not in fields or not name:
        raise ValueError(f"{key!r}: not a 'section.key' of the engine config ({', '.join(fields)})")
    if name not in getattr(fields[section].annotation, "model_fields", {}):
        raise ValueError(f"{key!r}: [{section}] has no key {name!r}")


class Range(BaseModel):
    """A numeric range an Optuna sweep samples (``search = "optuna"``): ``[low, high]``, on a log scale
    when ``log``, whole numbers when ``integer``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"need low < high (and low > 0 on a log scale), got {self.low}, {self.high}")
        return self


class SweepSpec(BaseModel):
    """A validated sweep file (see the module docstring); paths are absolute once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str | None = Field(None, description="engine config TOML the grid overrides; the defaults when unset")
    files: list[str | list[str]] = Field(min_length=1, description="file sets: a tick file, or sessions in order")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted engine-config key = values")
    folds: int | None = Field(None, ge=1, description="[train] folds of every configuration; the base's when unset")
    seed: int = Field(7, description="[train] seed and bootstrap seed of every task")
    replicates: int = Field(200, ge=1, description="block-bootstrap resamples of each fold's intervals")
    backtest: bool = Field(False, description="also backtest each fold's models on its test span (bt.* columns)")
    search: Literal["grid", "optuna"] = Field(
        "grid", description="grid: every configuration; optuna: trials sampled from the grid's values and [space]"
    )
    space: dict[str, Range] = Field(default_factory=dict, description="optuna: dotted key = numeric range")
    trials: int = Field(8, ge=1, description="optuna: configurations to try")
    batch: int = Field(2, ge=1, description="optuna: trials run at once (in parallel on Ray) before the next are asked")
    objective: str = Field("log_loss_skill", description="optuna: the metric averaged over horizons and tasks")
    direction: Literal["maximize", "minimize"] = "maximize"

    @field_validator("grid")
    @classmethod
    def _dotted_keys(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            _check_key(key)
            if not values:
                raise ValueError(f"{key!r}: give at least one value")
        return grid

    @field_validator("space")
    @classmethod
    def _space_keys(cls, space: dict[str, Range]) -> dict[str, Range]:
        for key in space:
            _check_key(key)
        return space

    @model_validator(mode="after")
    def _search_settings(self) -> SweepSpec:
        if self.search == "grid" and self.space:
            raise ValueError("space: ranges are sampled by search = 'optuna' only; a grid lists values in [grid]")
        if set(self.grid) & set(self.space):
            raise ValueError(f"keys in both grid and space: {sorted(set(self.grid) & set(self.space))}")
        if self.objective not in _METRICS[:-1]:
            raise ValueError(f"objective must be one of the numeric metrics {_METRICS[:-1]}, got {self.objective!r}")
        return self

    def file_sets(self) -> list[tuple[str, ...]]:
        return [(f,) if isinstance(f, str) else tuple(f) for f in self.files]


@dataclass(frozen=True)
class SweepTask:
    """One configuration x file set x fold: everything :func:`run_task` needs, plain data (Ray ships it).

    ``overrides`` is the grid point (dotted key -> value); ``config`` the full engine config as a dict.
    """

    config_id: int
    overrides: dict[str, Any]
    config: dict[str, Any]
    file_set: int
    files: tuple[str, ...]
    fold: int
    seed: int
    replicates: int
    backtest: bool = False


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SweepError(f"{path}: {exc}") from exc


def base_config(spec: SweepSpec) -> dict[str, Any]:
    """Return the spec's base engine config as TOML data (empty: the defaults).

    Raises
    ------
    SweepError
        If the base file cannot be read.
    """
    return {} if spec.base is None else _read_toml(Path(spec.base))


def config_dict(spec: SweepSpec, base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` (dotted keys) and the sweep's seed and folds applied, validated.

    Raises
    ------
    pydantic.ValidationError
        If the result is not a valid engine config.
    """
    cfg = json.loads(json.dumps(base))  # a deep copy of plain TOML data
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        cfg.setdefault(section, {})[name] = value
    cfg.setdefault("train", {})["seed"] = spec.seed
    if spec.folds is not None:
        cfg["train"]["folds"] = spec.folds
    EngineConfig.model_validate(cfg)
    return cfg


def load_sweep(path: str | Path) -> tuple[SweepSpec, list[dict[str, Any]]]:
    """Read a sweep file; return the spec (paths made absolute) and each configuration's engine config dict.

    Relative paths (``base``, ``files``) are read from the sweep file's folder. Every configuration of a
    grid is validated here, so a bad value stops the sweep before any task runs; an Optuna sweep
    (``backtest.sweep_search``) returns no configuration (its trials choose them), its base validated.

    Raises
    ------
    SweepError
        If the file or the base config cannot be read, a key is unknown, a tick file is missing, or a
        configuration fails the engine config's validation (the message names the file, the
        configuration's settings and the key).
    """
    path = Path(path)
    raw = _read_toml(path)
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SweepError("\n".join(lines)) from exc
    here = path.parent

    def absolute(p: str) -> str:
        return str((here / p).resolve())

    files = [absolute(f) if isinstance(f, str) else [absolute(g) for g in f] for f in spec.files]
    missing = [f for fs in files for f in ([fs] if isinstance(fs, str) else fs) if not Path(f).is_file()]
    if missing:
        raise SweepError(f"{path}: files: no such tick file: {', '.join(missing)}")
    base_path = None if spec.base is None else absolute(spec.base)
    spec = spec.model_copy(update={"files": files, "base": base_path})
    base = base_config(spec)
    configs = []
    for overrides in grid_points(spec.grid) if spec.search == "grid" else [{}]:
        try:
            configs.append(config_dict(spec, base, overrides))
        except ValidationError as exc:
            lines = [f"{path}: {overrides}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise SweepError("\n".join(lines)) from exc
    return spec, configs if spec.search == "grid" else []


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Return the grid's cartesian product as dicts (one with no key when the grid is empty), keys in
    file order and the last key varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def config_tasks(spec: SweepSpec, config_id: int, overrides: dict[str, Any], cfg: dict[str, Any]) -> list[SweepTask]:
    """Return one configuration's tasks: every file set x fold, in that nesting order."""
    folds = EngineConfig.model_validate(cfg).train.folds
    return [
        SweepTask(config_id, overrides, cfg, file_set, files, fold, spec.seed, spec.replicates, spec.backtest)
        for file_set, files in enumerate(spec.file_sets())
        for fold in range(folds)
    ]


def sweep_tasks(spec: SweepSpec, configs: list[dict[str, Any]]) -> list[SweepTask]:
    """Return every configuration x file set x fold, in that nesting order (the table's row order)."""
    points = grid_points(spec.grid)
    return [
        t
        for config_id, (overrides, cfg) in enumerate(zip(points, configs, strict=True))
        for t in config_tasks(spec, config_id, overrides, cfg)
    ]


def _test_span(models: ModelSet) -> tuple[int, int]:
    # Each horizon's test span runs from its first to its last labelled test row: take them all.
    return (
        min(p.card.test_span_ns[0] for p in models.predictors),
        max(p.card.test_span_ns[1] for p in models.predictors),
    )


_BT_SUMS = ("fills", "trades", "gross_pnl", "fees", "net_pnl")
_BT_ONE_FILE = ("hit_rate", "sharpe", "max_drawdown")


def _backtest(models: ModelSet, files: Sequence[str], cfg: EngineConfig) -> dict[str, Any]:
    # The engine's replay (backtest.driver) of the fold's test span: entries from its first decision, the
    # events cut after its last, so a position still open exits at the last book (the driver's end-of-data
    # exit). Counts and PnL (quote currency) add over the files the span covers; the hit rate, Sharpe and
    # drawdown are reported when the span lies in one file.
    lo, hi = _test_span(models)
    sums: dict[str, float] = dict.fromkeys(_BT_SUMS, 0)
    single: dict[str, Any] = dict.fromkeys(_BT_ONE_FILE)
    replayed = 0
    for f in files:
        data = tickfile.read(f)
        if len(data) == 0 or data.ts_event[-1] < lo or data.ts_event[0] > hi:
            continue
        n = int(np.searchsorted(data.ts_event, hi, side="right"))
        cut = tickfile.TickData(
            data.instrument,
            data.ts_event[:n],
            data.ts_recv[:n],
            data.kind[:n],
            data.side[:n],
            data.price[:n],
            data.size[:n],
            data.flags[:n],
            None if data.order_id is None else data.order_id[:n],
        )
        result = run_backtest(cut, models, cfg, trade_from_ns=lo)
        assert result.features is not None, "run_backtest returns the feature matrix it replayed"
        m = build_metrics(
            result, result.features, cfg.risk.initial_equity, cfg.backtest.periods_per_year, touch_path(cut)
        )
        for k in _BT_SUMS:
            sums[k] += m[k]
        single = {k: m[k] for k in _BT_ONE_FILE}
        replayed += 1
    if replayed != 1:
        single = dict.fromkeys(_BT_ONE_FILE)
    return {f"bt.{k}": v for k, v in {**sums, **single}.items()}


def _fold_rows(models: ModelSet, files: Sequence[str], cfg: EngineConfig) -> dict[int, tuple[np.ndarray, ...]]:
    # Each horizon's labelled rows on its fold's test span, from every file that reaches into it; the rows
    # and prices are the ones `scalper evaluate` scores (models.evaluate).
    parts: dict[int, list[tuple[np.ndarray, ...]]] = {p.horizon_ns: [] for p in models.predictors}
    lo, hi = _test_span(models)
    for f in files:
        data = tickfile.read(f)
        if len(data) == 0 or data.ts_event[-1] < lo or data.ts_event[0] > hi:
            continue  # no decision of this file lies in any test span: skip its feature pass
        fm = compute_features(data, FeatureState.from_config(cfg.features))
        path = touch_path(data)
        for p in models.predictors:
            y, proba, ts, move, prices = _horizon_rows(p, fm, path, p.card.test_span_ns[0])
            keep = ts <= p.card.test_span_ns[1]
            parts[p.horizon_ns].append((y[keep], proba[keep], ts[keep], move[keep], *(q[keep] for q in prices)))
    return {h: tuple(np.concatenate(col) for col in zip(*rows, strict=True)) for h, rows in parts.items() if rows}


_METRICS = (
    "rows",
    "moved_rows",
    "log_loss",
    "prior_log_loss",
    "log_loss_skill",
    "brier_skill",
    "auc_up_down",
    "balanced_accuracy",
    "prior_balanced_accuracy",
    "ece",
    "information_coefficient",
    "rule_trades",
    "rule_mean_bps",
    "verdict",
)


def _metric_columns(prefix: str, ev: HorizonEvaluation) -> dict[str, Any]:
    out = {f"{prefix}.{m}": getattr(ev, m) for m in _METRICS}
    for name in ("log_loss_skill", "auc_up_down"):
        interval = getattr(ev, f"{name}_interval")
        out[f"{prefix}.{name}_low"], out[f"{prefix}.{name}_high"] = interval.low, interval.high
    return out


def run_task(task: SweepTask) -> dict[str, Any]:
    """Train one configuration's models on one fold of one file set and score them on the fold's test span.

    Returns one row: ``config_id``, ``file_set``, ``files`` (names), ``fold``, ``seed``, the grid point's
    values under their dotted keys, per horizon ``h<H>s.<metric>`` (the metrics of
    ``models.evaluation.HorizonEvaluation`` named in ``_METRICS``, the 95 % block-bootstrap interval of
    the log-loss skill and the up-vs-down AUC, the test span in ns, the trees, the parameters of
    ``models.search.SPACE`` as trained, ``search_inner_log_loss`` (None without a search) and
    ``onnx_sha256``: the sha256 of the fold's ``.onnx``), with ``backtest`` the ``bt.<metric>`` of the
    engine's replay of the test span (``backtest.report`` metrics: fills, round-trip trades, gross and
    net PnL and fees in quote currency, summed over the files the span covers; hit rate, Sharpe and max
    drawdown when it lies in one file), ``error`` (None, or why the configuration could not train on
    this fold, with every metric null) and ``wall_s`` (s). A pure function of ``task`` apart from
    ``wall_s``.
    """
    t0 = time.perf_counter()
    cfg = EngineConfig.model_validate(task.config)
    # Unset first-passage barriers from the trade, as `scalper train` fills them: a taker entry and exit.
    fee = 2.0 * cfg.exec.taker_fee_bps
    labels = cfg.labels.with_trade(cfg.risk.take_profit_bps, cfg.risk.stop_loss_bps, cfg.exec.latency_ms, fee)
    # Enter where Kelly would bet with the configured barriers, as `scalper evaluate` does by default.
    threshold = 1.0 / (1.0 + cfg.risk.take_profit_bps / cfg.risk.stop_loss_bps)
    row: dict[str, Any] = {
        "config_id": task.config_id,
        "file_set": task.file_set,
        "files": [Path(f).name for f in task.files],
        "fold": task.fold,
        "seed": task.seed,
        **task.overrides,
        "error": None,
    }
    with tempfile.TemporaryDirectory(prefix="scalper-sweep-") as tmp:
        try:
            train_models(list(task.files), tmp, cfg.features, labels, cfg.train, fold=task.fold)
        except (TrainingError, ValueError) as exc:
            row["error"] = str(exc)
            row["wall_s"] = time.perf_counter() - t0
            return row
        models = load_model_dir(tmp, cfg.features.set)
        rows = _fold_rows(models, task.files, cfg)
        for p in models.predictors:
            prefix = f"h{p.card.horizon_s:g}s"
            row[f"{prefix}.test_from_ns"], row[f"{prefix}.test_to_ns"] = p.card.test_span_ns
            row[f"{prefix}.n_trees"] = p.card.n_trees
            row.update({f"{prefix}.{k}": p.card.params.get(k) for k in (*SPACE, "search_inner_log_loss")})
            row[f"{prefix}.onnx_sha256"] = tickfile.file_sha256(p.path)
            if p.horizon_ns not in rows or rows[p.horizon_ns][0].size == 0:
                continue  # metrics stay null: the fold's test span has no labelled row at this horizon
            y, proba, ts, move, *prices = rows[p.horizon_ns]
            ev = evaluate_horizon(
                y,
                proba,
                training_prior(p.card),
                ts,
                p.horizon_ns,
                move,
                (prices[0], prices[1], prices[2], prices[3]),
                threshold,
                cfg.exec.taker_fee_bps,
                replicates=task.replicates,
                seed=task.seed,
            )
            row.update(_metric_columns(prefix, ev))
        if task.backtest:
            row.update(_backtest(models, task.files, cfg))
    row["wall_s"] = time.perf_counter() - t0
    return row


Runner = Callable[[list[SweepTask], Callable[[dict[str, Any]], None]], list[dict[str, Any]]]
"""Runs tasks and returns their rows in task order, calling the second argument with each row as it is done."""


def _serial(tasks: list[SweepTask], on_row: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    rows = []
    for t in tasks:
        rows.append(run_task(t))
        on_row(rows[-1])
    return rows


@contextmanager
def runner(executor: str = "serial", address: str | None = None) -> Iterator[Runner]:
    """Yield a :data:`Runner`: serial (one task after another in this process) or Ray (one Ray task each,
    one CPU each, on the Ray already initialised in this process, else ``ray.init(address=address)``: a
    local Ray on this machine when ``address`` is None, or the cluster at ``address``, whose nodes need
    this package installed; shut down on exit when this call started it).

    Raises
    ------
    ValueError
        If ``executor`` is neither "serial" nor "ray".
    ImportError
        If ``executor`` is "ray" and Ray is not installed.
    """
    if executor == "serial":
        yield _serial
        return
    if executor != "ray":
        raise ValueError(f"executor must be 'serial' or 'ray', got {executor!r}")
    import ray

    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(include_dashboard=False)  # a local Ray for this sweep: no dashboard to serve
        else:
            ray.init(address=address)  # a cluster keeps its own settings
    remote = ray.remote(num_cpus=1)(run_task)

    def run(tasks: list[SweepTask], on_row: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
        pending = {remote.remote(t): i for i, t in enumerate(tasks)}
        out: list[dict[str, Any]] = [{} for _ in tasks]
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                out[pending.pop(ref)] = row = ray.get(ref)
                on_row(row)
        return out

    try:
        yield run
    finally:
        if started:
            ray.shutdown()


def ray_available() -> bool:
    """True when Ray can be imported (the ``distributed`` extra)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_sweep(
    tasks: list[SweepTask],
    executor: str = "serial",
    address: str | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> pl.DataFrame:
    """Run every task and return one row per task, in task order (the order of :func:`sweep_tasks`).

    Parameters
    ----------
    executor, address : as :func:`runner`.
    on_row : callable, optional
        Called with each row as its task finishes (progress reporting; Ray: in completion order).

    Raises
    ------
    ValueError
        If ``executor`` is unknown or there is no task.
    ImportError
        If ``executor`` is "ray" and Ray is not installed.
    """
    if not tasks:
        raise ValueError("no task to run")
    with runner(executor, address) as run:
        rows = run(tasks, on_row if on_row is not None else (lambda _row: None))
    return table_of(rows)


def table_of(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Return the rows as one table."""
    # Rows differ in columns when horizons differ between configurations: absent ones are null.
    return pl.from_dicts(rows, infer_schema_length=None)


def write_table(table: pl.DataFrame, out_dir: str | Path) -> Path:
    """Write ``table`` to ``<out_dir>/sweep.parquet`` (folder created) and return the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.parquet"
    table.write_parquet(path)
    return path
