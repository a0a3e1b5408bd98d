"""Train one LightGBM direction model per horizon, export each to ONNX with a model card."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss

from scalper.features.batch import compute_features
from scalper.features.config import FeaturesConfig
from scalper.features.kernels import FeatureState
from scalper.features.registry import FEATURE_NAMES, FEATURE_SET_VERSION
from scalper.ingest import tickfile
from scalper.models.card import ModelCard, SplitMetrics
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.models.dataset import LabelledRows, label_rows
from scalper.models.labels import CLASS_NAMES
from scalper.models.onnx_export import INPUT_NAME, PROBABILITIES, parity_check, save_onnx, to_onnx
from scalper.models.split import TimeSplit, time_split

N_CLASSES = len(CLASS_NAMES)
_VERSIONED = ("scalper", "lightgbm", "onnxmltools", "onnxruntime", "onnx", "numpy", "numba")


class TrainingError(ValueError):
    """The data cannot train a model (too few rows, a class missing from the training span)."""


@dataclass(frozen=True)
class HorizonResult:
    horizon_s: float
    card: ModelCard
    onnx_path: Path


def _metrics(y: np.ndarray, proba: np.ndarray, prior: np.ndarray) -> SplitMetrics:
    labels = list(range(N_CLASSES))
    majority = int(np.argmax(prior))
    base = np.full(len(y), majority)
    return SplitMetrics(
        rows=int(len(y)),
        accuracy=float(accuracy_score(y, proba.argmax(axis=1))),
        balanced_accuracy=float(balanced_accuracy_score(y, proba.argmax(axis=1))),
        log_loss=float(log_loss(y, proba, labels=labels)),
        baseline_accuracy=float(accuracy_score(y, base)),
        baseline_balanced_accuracy=float(balanced_accuracy_score(y, base)),
        baseline_log_loss=float(log_loss(y, np.tile(prior, (len(y), 1)), labels=labels)),
        class_counts=[int(c) for c in np.bincount(y, minlength=N_CLASSES)],
    )


def _versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _span(ts: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    sel = ts[mask]
    return (int(sel[0]), int(sel[-1]))


def train_horizon(
    rows: LabelledRows,
    split: TimeSplit,
    horizon_ns: int,
    train_cfg: TrainConfig,
    out_dir: Path,
    card_base: dict,
) -> HorizonResult:
    """Fit, evaluate, export and parity-check the model of one horizon; write ``h<H>s.onnx`` and its card.

    Raises
    ------
    TrainingError
        If a part of the split has no labelled row or the training span lacks a class.
    onnx_export.ParityError
        If ONNX Runtime and LightGBM disagree (nothing is written then).
    """
    y = rows.labels[horizon_ns]
    known = y >= 0
    parts = {name: getattr(split, name) & known for name in ("train", "val", "test")}
    for name, mask in parts.items():
        if not mask.any():
            raise TrainingError(f"horizon {horizon_ns / 1e9:g} s: no labelled {name} rows")
    y_train = y[parts["train"]].astype(np.int64)
    counts = np.bincount(y_train, minlength=N_CLASSES)
    if (counts == 0).any():
        raise TrainingError(
            f"horizon {horizon_ns / 1e9:g} s: training span"
            f" lacks class(es) {[CLASS_NAMES[i] for i in np.flatnonzero(counts == 0)]}"
        )
    prior = counts / counts.sum()
    t = train_cfg
    model = lgb.LGBMClassifier(
        objective="multiclass",
        n_estimators=t.n_estimators,
        learning_rate=t.learning_rate,
        num_leaves=t.num_leaves,
        min_child_samples=t.min_child_samples,
        random_state=t.seed,
        n_jobs=1,
        deterministic=True,
        verbose=-1,
    )
    X64 = rows.X.astype(np.float64)
    callbacks: list[Callable[..., Any]] = (
        [lgb.early_stopping(t.early_stopping_rounds, verbose=False)] if t.early_stopping_rounds else []
    )
    model.fit(
        X64[parts["train"]],
        y_train,
        eval_X=(X64[parts["val"]],),
        eval_y=(y[parts["val"]].astype(np.int64),),
        callbacks=callbacks,
    )
    metrics = {
        name: _metrics(y[mask].astype(np.int64), np.asarray(model.predict_proba(X64[mask])), prior)
        for name, mask in parts.items()
    }
    onnx_bytes = to_onnx(model, rows.X.shape[1])
    parity = parity_check(model, onnx_bytes, rows.X)
    stem = f"h{horizon_ns / 1e9:g}s"
    onnx_path = out_dir / f"{stem}.onnx"
    card = ModelCard(
        model_file=onnx_path.name,
        horizon_s=horizon_ns / 1e9,
        classes=list(CLASS_NAMES),
        feature_set_version=FEATURE_SET_VERSION,
        feature_names=list(FEATURE_NAMES),
        input_name=INPUT_NAME,
        probabilities_output=PROBABILITIES,
        dead_zone_ticks=rows.dead_zone_ticks,
        train_span_ns=_span(rows.ts, parts["train"]),
        val_span_ns=_span(rows.ts, parts["val"]),
        test_span_ns=_span(rows.ts, parts["test"]),
        n_trees=int(model.booster_.num_trees()),
        params={
            k: v for k, v in model.get_params().items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)
        },
        parity_max_abs_diff=parity,
        metrics=metrics,
        **card_base,
    )
    save_onnx(onnx_bytes, onnx_path)
    card.save(out_dir / f"{stem}.card.json")
    return HorizonResult(horizon_ns / 1e9, card, onnx_path)


def train_models(
    ticks: str | Path,
    out_dir: str | Path,
    features_cfg: FeaturesConfig,
    labels_cfg: LabelsConfig,
    train_cfg: TrainConfig,
    on_horizon=None,
) -> list[HorizonResult]:
    """Build the decision rows of a tick file and train every configured horizon.

    Parameters
    ----------
    ticks : path
        Schema-v1 tick file.
    out_dir : path
        Directory for ``h<H>s.onnx`` and ``h<H>s.card.json`` (created).
    features_cfg, labels_cfg, train_cfg
        Grid and buffers; horizons, dead zone, split and embargo; LightGBM parameters.
    on_horizon : callable, optional
        Called with each :class:`HorizonResult` as it is written (progress reporting).
    """
    ticks = Path(ticks)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = tickfile.read(ticks)
    fc = features_cfg
    fm = compute_features(data, FeatureState.from_config(fc))
    horizons_ns = [int(round(h * 1e9)) for h in labels_cfg.horizons_s]
    split = time_split(fm.ts, labels_cfg.split, labels_cfg.embargo_ns)
    rows = label_rows(fm, horizons_ns, labels_cfg.dead_zone_ticks, dead_zone_rows=split.train)
    inst = data.instrument
    card_base = dict(
        decision_grid_ms=fc.grid_ms,
        instrument={
            "venue": inst.venue,
            "symbol": inst.symbol,
            "tick_size": inst.tick_size,
            "lot_size": inst.lot_size,
            "source": inst.source,
        },
        data_file=ticks.name,
        data_sha256=tickfile.file_sha256(ticks),
        embargo_s=labels_cfg.embargo_ns / 1e9,
        versions=_versions(),
        synthetic=inst.source.startswith("synthetic"),
    )
    results = []
    for h in horizons_ns:
        res = train_horizon(rows, split, h, train_cfg, out_dir, card_base)
        results.append(res)
        if on_horizon is not None:
            on_horizon(res)
    return results
