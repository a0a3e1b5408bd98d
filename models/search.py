"""Hyperparameter search (Optuna) inside one walk-forward fold's training span, never on its test span.

API (used by ``models/train.py`` when ``[train] search = "optuna"``): :func:`search_params` cuts the
fold's labelled training rows into an inner, purged train / validation / test split with
``models.split.walk_forward`` (the same fractions and embargo as the outer folds), and lets Optuna's TPE
sampler (seeded: the same data and seed give the same trials) choose the LightGBM parameters of
:data:`SPACE` that minimise the log-loss on the inner test part, early stopping on the inner validation
part. The fold's own validation and test rows are never passed in, so no choice depends on them.

Optuna is the optional extra ``research`` (``pip install -e '.[research]'``); it is imported only here,
when a search runs. Akiba et al. (2019), "Optuna: A Next-generation Hyperparameter Optimization
Framework", KDD; Bergstra et al. (2011), "Algorithms for Hyper-Parameter Optimization" (TPE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import log_loss

from scalper.models.split import walk_forward

SPACE: dict[str, tuple[str, float, float]] = {
    # name: (kind, low, high); every range is sampled on a log scale except the column share.
    "num_leaves": ("int_log", 4, 128),
    "learning_rate": ("float_log", 0.01, 0.3),
    "min_child_samples": ("int_log", 10, 1000),
    "colsample_bytree": ("float", 0.5, 1.0),
}
"""The searched LightGBM parameters and their ranges; the rest of ``TrainConfig`` stays as configured."""


class SearchError(ValueError):
    """The search cannot run: Optuna is not installed, or the training span is too small to split (a
    ValueError, as every refusal of the training input is)."""


@dataclass(frozen=True)
class SearchResult:
    """The chosen parameters (names of :data:`SPACE`), the inner test log-loss they reached (nats per
    row, weighted as the training rows are), the trials run and the inner split's row counts."""

    params: dict[str, float | int]
    inner_log_loss: float
    trials: int
    inner_rows: tuple[int, int, int]


@dataclass(frozen=True)
class InnerData:
    """One part of the inner split: feature rows float64[n, F], labels int64[n], weights float64[n]."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray


def fit_score(
    params: dict[str, Any],
    base: dict[str, Any],
    train: InnerData,
    val: InnerData,
    test: InnerData,
    early_stopping_rounds: int,
    n_classes: int,
) -> float:
    """Fit LightGBM with ``base`` updated by ``params`` on ``train`` (early stopping on ``val``) and return
    its weighted log-loss on ``test``, nats per row. The one place a trial touches rows (tests watch it)."""
    model = lgb.LGBMClassifier(**{**base, **params})
    callbacks: list[Callable[..., Any]] = (
        [lgb.early_stopping(early_stopping_rounds, verbose=False)] if early_stopping_rounds else []
    )
    model.fit(
        train.X,
        train.y,
        sample_weight=train.w,
        eval_X=(val.X,),
        eval_y=(val.y,),
        eval_sample_weight=[val.w],
        callbacks=callbacks,
    )
    proba = np.asarray(model.predict_proba(test.X))
    return float(log_loss(test.y, proba, sample_weight=test.w, labels=list(range(n_classes))))


def _suggest(trial: Any) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for name, (kind, low, high) in SPACE.items():
        if kind == "int_log":
            out[name] = trial.suggest_int(name, int(low), int(high), log=True)
        elif kind == "float_log":
            out[name] = trial.suggest_float(name, low, high, log=True)
        else:
            out[name] = trial.suggest_float(name, low, high)
    return out


def search_params(
    X: np.ndarray,
    y: np.ndarray,
    clock_ns: np.ndarray,
    label_end_ns: np.ndarray,
    train_mask: np.ndarray,
    weights: Callable[[np.ndarray], np.ndarray],
    fractions: tuple[float, float, float],
    embargo_ns: int,
    base: dict[str, Any],
    trials: int,
    seed: int,
    early_stopping_rounds: int,
    n_classes: int,
) -> SearchResult:
    """Choose LightGBM parameters on the rows of ``train_mask`` only (see the module docstring).

    Parameters
    ----------
    X : float64[M, F] feature rows; y : int[M] labels (every row of ``train_mask`` labelled, >= 0).
    clock_ns, label_end_ns : int64[M], decision times and label ends on one clock, ns (for the purge).
    train_mask : bool[M], the fold's training rows; no other row is read.
    weights : callable
        Given a bool[M] mask inside ``train_mask``, return float64[mask.sum()] sample weights.
    fractions, embargo_ns : the inner split's train / validation / test shares and embargo (ns).
    base : LightGBM parameters every trial starts from (seed, objective, n_estimators, ...).
    trials : Optuna trials (>= 1); seed : the TPE sampler's seed.
    early_stopping_rounds : 0 disables early stopping on the inner validation part.
    n_classes : classes of the labels.

    Raises
    ------
    SearchError
        If Optuna is not installed, or the inner split has an empty part or an inner training part
        that lacks a class.
    """
    try:
        import optuna
    except ImportError as exc:
        raise SearchError("[train] search = 'optuna' needs Optuna: pip install -e '.[research]'") from exc
    idx = np.flatnonzero(train_mask)
    try:
        (inner,) = walk_forward(clock_ns[idx], fractions, embargo_ns, 1, "expanding", label_end_ns[idx])
    except ValueError as exc:
        raise SearchError(f"the training span cannot be split for the search: {exc}") from exc

    def part(inner_mask: np.ndarray) -> InnerData:
        mask = np.zeros(len(train_mask), dtype=bool)
        mask[idx[inner_mask]] = True
        return InnerData(X[mask], y[mask].astype(np.int64), weights(mask))

    train, val, test = part(inner.train), part(inner.val), part(inner.test)
    missing = np.flatnonzero(np.bincount(train.y, minlength=n_classes) == 0)
    if missing.size:
        raise SearchError(f"the search's inner training part lacks class(es) {missing.tolist()}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(
        lambda trial: fit_score(_suggest(trial), base, train, val, test, early_stopping_rounds, n_classes),
        n_trials=trials,
        n_jobs=1,  # trials in order: the sampler's choices then depend on the seed alone
    )
    return SearchResult(
        params={k: study.best_params[k] for k in SPACE},
        inner_log_loss=float(study.best_value),
        trials=len(study.trials),
        inner_rows=(len(train.y), len(val.y), len(test.y)),
    )
