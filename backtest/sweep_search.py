"""Optuna over sweep configurations (``search = "optuna"`` in a sweep file): trials instead of a grid.

:func:`search_sweep` asks Optuna's TPE sampler (seeded with the sweep's seed) for ``batch`` configurations
at a time, each a choice among the grid's listed values and a draw from each ``[space]`` range; runs
every file set x fold of each (``backtest.sweep.config_tasks``; in parallel on Ray), and tells Optuna
each trial's objective: the sweep's ``objective`` metric averaged over its horizons and tasks. Trials
are told in their order once their batch is done, so the sampler's next choices depend on the seed and
the results alone, and a serial and a Ray run give the same table (apart from ``wall_s``). A trial
whose configuration fails validation, or whose every task fails to train, is told as failed.

Akiba et al. (2019), "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from pydantic import ValidationError

from scalper.backtest.sweep import (
    SweepError,
    SweepSpec,
    SweepTask,
    base_config,
    config_dict,
    config_tasks,
    runner,
    table_of,
)
from scalper.engine.config import EngineConfig


def _suggest(trial: Any, spec: SweepSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in spec.grid.items():
        # An index, so a choice may be any TOML value (a list of horizons too), not only a scalar.
        out[key] = values[trial.suggest_categorical(key, list(range(len(values))))]
    for key, r in spec.space.items():
        if r.integer:
            out[key] = trial.suggest_int(key, int(r.low), int(r.high), log=r.log)
        else:
            out[key] = trial.suggest_float(key, r.low, r.high, log=r.log)
    return out


def trial_tasks(spec: SweepSpec) -> int:
    """Return how many tasks a full search runs when no trial fails validation (for a progress bar)."""
    folds = spec.folds if spec.folds is not None else EngineConfig.model_validate(base_config(spec)).train.folds
    return spec.trials * len(spec.file_sets()) * folds


def objective_value(rows: list[dict[str, Any]], metric: str) -> float | None:
    """Return the mean of ``h<H>s.<metric>`` over the rows and horizons where it is defined, else None."""
    values = [v for r in rows for k, v in r.items() if k.endswith(f".{metric}") and k.startswith("h") and v is not None]
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def search_sweep(
    spec: SweepSpec,
    executor: str = "serial",
    address: str | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> pl.DataFrame:
    """Run an Optuna sweep (see the module docstring); return one row per trial x file set x fold, in trial
    order (``config_id`` = the trial's number), and one row with ``error`` per trial that failed validation.

    Raises
    ------
    SweepError
        If Optuna is not installed.
    ValueError, ImportError
        As ``backtest.sweep.runner``.
    """
    try:
        import optuna
    except ImportError as exc:
        raise SweepError("search = 'optuna' needs Optuna: pip install -e '.[research]'") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = base_config(spec)
    study = optuna.create_study(direction=spec.direction, sampler=optuna.samplers.TPESampler(seed=spec.seed))
    report = on_row if on_row is not None else (lambda _row: None)
    rows: list[dict[str, Any]] = []
    with runner(executor, address) as run:
        while len(study.trials) < spec.trials:
            trials = [study.ask() for _ in range(min(spec.batch, spec.trials - len(study.trials)))]
            tasks: list[SweepTask] = []
            invalid: dict[int, dict[str, Any]] = {}
            for trial in trials:
                overrides = _suggest(trial, spec)
                try:
                    tasks += config_tasks(spec, trial.number, overrides, config_dict(spec, base, overrides))
                except ValidationError as exc:
                    invalid[trial.number] = {"config_id": trial.number, **overrides, "error": str(exc)}
            done = run(tasks, report) if tasks else []
            for trial in trials:
                if trial.number in invalid:
                    rows.append(invalid[trial.number])
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    continue
                mine = [r for r in done if r["config_id"] == trial.number]
                rows += mine
                value = objective_value(mine, spec.objective)
                if value is None:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, value)
    return table_of(rows)
