"""Evaluate a model directory on tick files, out of sample: feature rows, labels, predictions, metrics.

The rows of a tick file the models were trained on (the card's ``data_sha256`` or ``data_files``), or
of any file whose decisions overlap the card's training span in time (the same market seen through
another file), are scored from the card's test span on (the shipped model's: the last walk-forward
fold's); any other file is scored whole. Labels are rebuilt as the card's ``labels`` say
(``models.dataset.horizon_labels``: direction or first passage), and the prior is the card's
training-span class frequencies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalper.features.batch import FeatureMatrix, compute_features
from scalper.features.config import FeaturesConfig
from scalper.features.kernels import FeatureState
from scalper.ingest import tickfile
from scalper.models.card import ModelCard
from scalper.models.dataset import horizon_labels, mid_change
from scalper.models.evaluation import (
    BOOTSTRAP_REPLICATES,
    CONFIDENCE,
    ECE_BINS,
    HorizonEvaluation,
    evaluate_horizon,
    skill_score,
)
from scalper.models.inference import CARD_SUFFIX, ModelSet, OnnxPredictor, load_model_dir
from scalper.models.touchpath import TouchPath, touch_path


@dataclass(frozen=True)
class Segment:
    """One tick file's scored span: name, sha256, first and last scored decision (ns), and why that span."""

    file: str
    sha256: str
    from_ns: int
    to_ns: int
    span: str


@dataclass
class _Rows:
    # One horizon's scored rows, gathered over the tick files in order.
    y: list[np.ndarray] = field(default_factory=list)
    proba: list[np.ndarray] = field(default_factory=list)
    ts: list[np.ndarray] = field(default_factory=list)
    move: list[np.ndarray] = field(default_factory=list)
    prices: list[tuple[np.ndarray, ...]] = field(default_factory=list)

    def add(self, y, proba, ts, move, prices) -> None:
        self.y.append(y)
        self.proba.append(proba)
        self.ts.append(ts)
        self.move.append(move)
        self.prices.append(prices)

    def joined(self, k: slice = slice(None)):
        cat = np.concatenate
        prices = tuple(cat([p[j] for p in self.prices[k]]) for j in range(4))
        return cat(self.y[k]), cat(self.proba[k]), cat(self.ts[k]), cat(self.move[k]), prices


@dataclass(frozen=True)
class ModelEvaluation:
    """The evaluation of one model directory.

    ``horizons`` maps ``"5s"`` to the pooled evaluation over every segment; ``per_segment`` maps each
    tick file's name to its own per-horizon evaluations (only when there are several files); ``folds``
    maps a horizon to its card's walk-forward folds (:func:`fold_rows`).
    ``models`` lists each model's file, horizon and the sha256 of its ``.onnx`` and card.
    """

    model_dir: str
    models: list[dict[str, str | float]]
    segments: list[Segment]
    horizons: dict[str, HorizonEvaluation]
    per_segment: dict[str, dict[str, HorizonEvaluation]]
    settings: dict[str, float | int | str]
    folds: dict[str, list[FoldSummary]] = field(default_factory=dict)


@dataclass(frozen=True)
class FoldSummary:
    """One walk-forward fold of a card: its model on its test span (from ``test_from_ns``, ns), log-losses
    in nats beside the prior's, skill = 1 - model / prior."""

    index: int
    test_from_ns: int
    rows: int
    log_loss: float
    prior_log_loss: float
    log_loss_skill: float
    balanced_accuracy: float
    prior_balanced_accuracy: float
    n_trees: int
    # [train] regime_gate set: the card's RegimeComparison as JSON (single and gated model on this test span:
    # log-loss skill and up-vs-down AUC with block-bootstrap intervals, and the gate's feature and thresholds).
    regime_comparison: dict | None = None


def fold_rows(card: ModelCard) -> list[FoldSummary]:
    """Return the card's walk-forward folds, each fold's own model on its test span, beside the prior.

    Point estimates recorded by training: only the last fold's model is shipped, so only it can be
    rescored with intervals.
    """
    return [
        FoldSummary(
            index=f.index,
            test_from_ns=f.test_span_ns[0],
            rows=f.test.rows,
            log_loss=f.test.log_loss,
            prior_log_loss=f.test.baseline_log_loss,
            log_loss_skill=skill_score(f.test.log_loss, f.test.baseline_log_loss),
            balanced_accuracy=f.test.balanced_accuracy,
            prior_balanced_accuracy=f.test.baseline_balanced_accuracy,
            n_trees=f.n_trees,
            regime_comparison=None if f.regime_comparison is None else f.regime_comparison.model_dump(mode="json"),
        )
        for f in card.folds
    ]


def training_prior(card: ModelCard) -> np.ndarray:
    """Return float64[C]: the class frequencies of the card's training span.

    Raises
    ------
    ValueError
        If the card records no training-span class counts (the prior cannot be known).
    """
    train = card.metrics.get("train")
    if train is None or sum(train.class_counts) == 0:
        raise ValueError(f"{card.model_file}: the card records no training-span class counts")
    counts = np.asarray(train.class_counts, dtype=np.float64)
    return counts / counts.sum()


def _scored_from(card: ModelCard, sha256: str, ts: np.ndarray) -> tuple[int, str]:
    # Another file of the same instrument over the same time (another depth of the same session, one
    # session of several the model learned from) holds the training span's market too: it counts as seen.
    if card.data_sha256 == sha256 or any(f.get("sha256") == sha256 for f in card.data_files):
        return card.test_span_ns[0], "test span of the card (trained on this file)"
    if ts.size and ts[0] < card.test_span_ns[0] and ts[-1] >= card.train_span_ns[0]:
        return card.test_span_ns[0], "test span of the card (the file overlaps the training span in time)"
    return np.iinfo(np.int64).min, "whole file (not the training file)"


def _touch_at(path: TouchPath, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Mid and spread (ticks) as of each time: the last valid message end at or before it.
    i = np.maximum(np.searchsorted(path.ts, t, side="right") - 1, 0)
    bid, ask = path.bid_tick[i].astype(np.float64), path.ask_tick[i].astype(np.float64)
    return (bid + ask) / 2.0, ask - bid


def _horizon_rows(p: OnnxPredictor, fm: FeatureMatrix, path: TouchPath, from_ns: int):
    # Labels exactly as training made them (the card's LabelSpec), on the labelled rows from from_ns on.
    h = p.horizon_ns
    labels = horizon_labels(p.card.labels, fm, h, path)
    sel = np.flatnonzero((fm.ts >= from_ns) & (labels.y >= 0))
    ts, y = fm.ts[sel], labels.y[sel].astype(np.int64)
    move = mid_change(fm, h)[sel]  # NaN where the horizon runs past the data (a first passage can end before)
    later_mid, later_spread = _touch_at(path, ts + h)
    later_mid[ts + h > (path.ts[-1] if path.ts.size else np.iinfo(np.int64).min)] = np.nan
    prices = (*_touch_at(path, ts), later_mid, later_spread)
    proba = p.predict_batch(fm.X[sel].astype(np.float32)) if sel.size else np.zeros((0, len(p.card.classes)))
    return y, np.asarray(proba, dtype=np.float64), ts, move, prices


def model_versions(models: ModelSet) -> list[dict[str, str | float]]:
    """Return, per model, its file, horizon (s) and the sha256 of its ``.onnx`` and its card: which model this was."""
    out: list[dict[str, str | float]] = []
    for p in models.predictors:
        card_path = p.path.with_name(p.path.stem + CARD_SUFFIX)
        out.append(
            {
                "model_file": p.path.name,
                "horizon_s": p.card.horizon_s,
                "onnx_sha256": tickfile.file_sha256(p.path),
                "card_sha256": tickfile.file_sha256(card_path),
                "trained_on": p.card.data_file,
            }
        )
    return out


def evaluate_model_dir(
    model_dir: str | Path,
    ticks: list[Path],
    features_cfg: FeaturesConfig,
    threshold: float,
    taker_fee_bps: float,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
    n_bins: int = ECE_BINS,
    on_step: Callable[[str], None] | None = None,
) -> ModelEvaluation:
    """Score every model of ``model_dir`` out of sample on ``ticks`` (see the module docstring).

    Parameters
    ----------
    threshold, taker_fee_bps : the simple trading rule's entry probability and taker fee, bps
        (``models.evaluation.rule_trades``).
    replicates, seed, n_bins : block-bootstrap resamples and seed; equal-mass ECE bins.
    on_step : callable, optional
        Called with a short description as each file and horizon is done (progress reporting).

    Raises
    ------
    models.card.ModelCardMismatch
        If the directory cannot be loaded or was trained on another instrument or decision grid.
    tickfile.TickFileError
        On an unreadable tick file.
    ValueError
        If no tick file is given, a horizon has no labelled row to score, or a card lacks its
        training class counts.
    """
    if not ticks:
        raise ValueError("no tick file to evaluate on")
    models = load_model_dir(model_dir, features_cfg.set)
    rows = {p.horizon_ns: _Rows() for p in models.predictors}
    segments = []
    for path in ticks:
        data = tickfile.read(path)
        models.check_compatible(features_cfg.grid_ms, data.instrument)
        fm = compute_features(data, FeatureState.from_config(features_cfg))
        path_ = touch_path(data)
        sha = tickfile.file_sha256(path)
        spans = [_scored_from(p.card, sha, fm.ts) for p in models.predictors]
        for p, (from_ns, _) in zip(models.predictors, spans, strict=True):
            rows[p.horizon_ns].add(*_horizon_rows(p, fm, path_, from_ns))
        first = max(s[0] for s in spans)
        scored = fm.ts[fm.ts >= first]
        segments.append(
            Segment(
                file=path.name,
                sha256=sha,
                from_ns=int(scored[0]) if scored.size else 0,
                to_ns=int(scored[-1]) if scored.size else 0,
                span=spans[0][1] if len({s[1] for s in spans}) == 1 else "per model: see each card",
            )
        )
        if on_step is not None:
            on_step(f"rows of {path.name}")

    def score(p: OnnxPredictor, k: slice) -> HorizonEvaluation:
        y, proba, ts, move, prices = rows[p.horizon_ns].joined(k)
        if y.size == 0:
            raise ValueError(f"{p.path.name}: no labelled row to score in {[s.file for s in segments[k]]}")
        return evaluate_horizon(
            y,
            proba,
            training_prior(p.card),
            ts,
            p.horizon_ns,
            move,
            prices,
            threshold,
            taker_fee_bps,
            replicates=replicates,
            seed=seed,
            n_bins=n_bins,
        )

    horizons = {}
    for p in models.predictors:
        horizons[f"{p.card.horizon_s:g}s"] = score(p, slice(None))
        if on_step is not None:
            on_step(f"{p.card.horizon_s:g} s scored")
    per_segment = {}
    if len(ticks) > 1:
        for i, seg in enumerate(segments):
            # A file with no scored row for a horizon (shorter than it) still counts in the pooled figures.
            per_segment[seg.file] = {
                f"{p.card.horizon_s:g}s": score(p, slice(i, i + 1))
                for p in models.predictors
                if rows[p.horizon_ns].y[i].size
            }
    return ModelEvaluation(
        model_dir=str(model_dir),
        models=model_versions(models),
        segments=segments,
        horizons=horizons,
        per_segment=per_segment,
        folds={f"{p.card.horizon_s:g}s": fold_rows(p.card) for p in models.predictors if p.card.folds},
        settings={
            "rule_threshold": threshold,
            "taker_fee_bps": taker_fee_bps,
            "bootstrap_replicates": replicates,
            "bootstrap": "moving blocks (Kunsch 1989), block = the horizon in rows",
            "seed": seed,
            "ece": f"class-wise, {n_bins} equal-mass bins",
            "confidence": CONFIDENCE,
        },
    )
