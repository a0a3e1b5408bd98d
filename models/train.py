"""Train LightGBM per horizon over purged walk-forward folds, calibrate, export the last fold to ONNX + card.

Per horizon: label every decision row (``models.dataset``), cut purged walk-forward folds
(``models.split``), and for each fold fit LightGBM on its training span (uniqueness sample weights,
early stopping on the validation span), fit the calibration on the validation span and score the test
span, which the fold never saw, and record its feature importance there (``models.importance``: split gain,
and permutation on the test span). The last fold's model (trained on the most recent data) is shipped with
its calibration inside the ONNX graph; the card records every fold's spans and test metrics. With
``[train] search = "optuna"`` each fold's LightGBM parameters are first chosen inside its training
span (``models.search``); the card's ``params`` hold the shipped model's choice. With ``[train]
regime_gate = "volatility"`` each fold also fits one LightGBM per volatility regime (``models.regime``:
thresholds from the fold's training rows; a regime with too few training rows, a missing class or no
validation row is served by the pooled model), with the pooled model's parameters; the calibration is one
map fitted on the gated model's validation probabilities and applied after the selection. The gated graph
is shipped, and every fold's card compares it with the pooled single model (each calibrated on its own).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss

from scalper.features.batch import compute_features
from scalper.features.config import FeaturesConfig
from scalper.features.kernels import FeatureState
from scalper.features.registry import feature_names
from scalper.ingest import tickfile
from scalper.models.calibration import Calibration, fit_isotonic, fit_temperature
from scalper.models.card import (
    ComparedMetrics,
    FeatureImportance,
    FoldCard,
    LabelSpec,
    ModelCard,
    RegimeComparison,
    RegimeFit,
    RegimeGate,
    SplitMetrics,
)
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.models.dataset import HorizonLabels, Sessions, choose_dead_zone, first_passage_spec
from scalper.models.evaluation import (
    block_bootstrap_indices,
    block_length,
    classwise_ece,
    percentile_interval,
    prior_proba,
    row_log_loss,
    skill_score,
    up_down_auc,
)
from scalper.models.importance import gain_shares, permutation_log_loss
from scalper.models.labels import CLASS_NAMES, uniqueness_weights
from scalper.models.onnx_export import INPUT_NAME, PROBABILITIES, parity_check, save_onnx, to_onnx, to_onnx_gated
from scalper.models.regime import GatedModel, assign_regimes, regime_column, regime_thresholds
from scalper.models.search import SearchResult, search_params
from scalper.models.split import Fold, walk_forward
from scalper.models.touchpath import touch_path

N_CLASSES = len(CLASS_NAMES)
# A regime gets its own model only with this many training rows per LightGBM leaf minimum (else pooled).
MIN_REGIME_ROWS_PER_LEAF = 10
COMPARISON_REPLICATES = 100  # block-bootstrap resamples of the single-vs-gated comparison on each test span
_VERSIONED = ("scalper", "lightgbm", "onnxmltools", "onnxruntime", "onnx", "numpy", "numba", "scikit-learn")


class TrainingError(ValueError):
    """The data cannot train a model (too few rows, a class missing from a training span)."""


@dataclass(frozen=True)
class HorizonResult:
    horizon_s: float
    card: ModelCard
    onnx_path: Path


@dataclass(frozen=True)
class _FoldFit:
    fold: Fold
    model: lgb.LGBMClassifier
    calibration: Calibration | None
    prior: np.ndarray
    parts: dict[str, np.ndarray]
    search: SearchResult | None = None
    gated: GatedModel | None = None
    gate: RegimeGate | None = None
    single_calibration: Calibration | None = None


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
        up_down_auc=up_down_auc(y, proba),
        ece=classwise_ece(y, proba)[0] if len(y) else None,
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


def _weights(ts: np.ndarray, labels: HorizonLabels, mask: np.ndarray, kind: str) -> np.ndarray:
    # Uniqueness among the rows of one part, scaled to mean 1 so LightGBM's hessian limits keep their scale.
    if kind == "none":
        return np.ones(int(mask.sum()))
    w = uniqueness_weights(ts, labels.end_ns, mask)[mask]
    return w / w.mean()


def _predict(fit: _FoldFit, X: np.ndarray, single: bool = False) -> tuple[np.ndarray, np.ndarray]:
    # The shipped model (gated when a gate is configured), or with single=True the pooled model alone.
    model: Any = fit.model if single or fit.gated is None else fit.gated
    calibration = fit.single_calibration if single and fit.gated is not None else fit.calibration
    raw = np.asarray(model.predict_proba(X))
    if calibration is None:
        return raw, raw
    cal = calibration.apply(raw).astype(np.float64)
    return raw, cal / cal.sum(axis=1, keepdims=True)  # float32 sums are 1 only to ~1e-7; metrics want 1


def _calibrate(raw_val: np.ndarray, y_val: np.ndarray, w_val: np.ndarray, t: TrainConfig) -> Calibration | None:
    if t.calibration == "none":
        return None
    fit = fit_isotonic if t.calibration == "isotonic" else fit_temperature
    return fit(raw_val, y_val, sample_weight=w_val)


def _fit_regimes(
    X64: np.ndarray,
    y: np.ndarray,
    parts: dict[str, np.ndarray],
    weights: Callable[[np.ndarray], np.ndarray],
    pooled: lgb.LGBMClassifier,
    params: dict[str, Any],
    t: TrainConfig,
    names: Sequence[str],
) -> tuple[GatedModel, RegimeGate]:
    col = regime_column(names)
    thresholds = regime_thresholds(X64[parts["train"], col], t.regime_bins)
    regime = assign_regimes(X64[:, col], thresholds)
    min_rows = MIN_REGIME_ROWS_PER_LEAF * t.min_child_samples
    models: list[lgb.LGBMClassifier | None] = []
    fits = []
    for k in range(t.regime_bins):
        train = parts["train"] & (regime == k)
        val = parts["val"] & (regime == k)
        counts = np.bincount(y[train].astype(np.int64), minlength=N_CLASSES)
        reason = None
        if train.sum() < min_rows:
            reason = f"{int(train.sum())} training rows < {min_rows}"
        elif (counts == 0).any():
            reason = f"training rows lack class(es) {[CLASS_NAMES[i] for i in np.flatnonzero(counts == 0)]}"
        elif not val.any():
            reason = "no validation row"
        if reason is not None:
            models.append(None)
            fits.append(RegimeFit(regime=k, train_rows=int(train.sum()), own_model=False, fallback_reason=reason))
            continue
        m = lgb.LGBMClassifier(**params)
        m.fit(
            X64[train],
            y[train].astype(np.int64),
            sample_weight=weights(train),
            eval_X=(X64[val],),
            eval_y=(y[val].astype(np.int64),),
            eval_sample_weight=[weights(val)],
            callbacks=[lgb.early_stopping(t.early_stopping_rounds, verbose=False)] if t.early_stopping_rounds else [],
        )
        models.append(m)
        fits.append(
            RegimeFit(regime=k, train_rows=int(train.sum()), own_model=True, n_trees=int(m.booster_.num_trees()))
        )
    gate = RegimeGate(
        feature=names[col],
        thresholds=[float(v) for v in thresholds],
        calibration="none" if t.calibration == "none" else "after selection",
        regimes=fits,
    )
    return GatedModel(col, thresholds, tuple(models), pooled), gate


def _fit_fold(
    X64: np.ndarray,
    ts: np.ndarray,
    labels: HorizonLabels,
    fold: Fold,
    t: TrainConfig,
    horizon_s: float,
    inner: tuple[np.ndarray, np.ndarray, LabelsConfig] | None = None,
    names: Sequence[str] = (),
) -> _FoldFit:
    y = labels.y
    known = y >= 0
    parts = {name: getattr(fold, name) & known for name in ("train", "val", "test")}
    for name, mask in parts.items():
        if not mask.any():
            raise TrainingError(f"horizon {horizon_s:g} s, fold {fold.index}: no labelled {name} rows")
    y_train = y[parts["train"]].astype(np.int64)
    counts = np.bincount(y_train, minlength=N_CLASSES)
    if (counts == 0).any():
        raise TrainingError(
            f"horizon {horizon_s:g} s, fold {fold.index}: training span"
            f" lacks class(es) {[CLASS_NAMES[i] for i in np.flatnonzero(counts == 0)]}"
        )
    params: dict[str, Any] = dict(
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
    search = None
    if t.search == "optuna":
        # Only the training rows go in: the search's own split is cut and purged inside them.
        assert inner is not None, "train_horizon passes the clock and label ends when a search is configured"
        clock, end_clock, cfg = inner
        search = search_params(
            X64,
            y,
            clock,
            end_clock,
            parts["train"],
            lambda mask: _weights(ts, labels, mask, t.sample_weights),
            cfg.split,
            cfg.embargo_ns,
            params,
            t.search_trials,
            t.seed,
            t.early_stopping_rounds,
            N_CLASSES,
        )
        params.update(search.params)
    model = lgb.LGBMClassifier(**params)
    callbacks: list[Callable[..., Any]] = (
        [lgb.early_stopping(t.early_stopping_rounds, verbose=False)] if t.early_stopping_rounds else []
    )
    w_val = _weights(ts, labels, parts["val"], t.sample_weights)
    model.fit(
        X64[parts["train"]],
        y_train,
        sample_weight=_weights(ts, labels, parts["train"], t.sample_weights),
        eval_X=(X64[parts["val"]],),
        eval_y=(y[parts["val"]].astype(np.int64),),
        eval_sample_weight=[w_val],
        callbacks=callbacks,
    )
    y_val = y[parts["val"]].astype(np.int64)
    calibration = _calibrate(np.asarray(model.predict_proba(X64[parts["val"]])), y_val, w_val, t)
    prior = counts / counts.sum()
    if t.regime_gate == "none":
        return _FoldFit(fold, model, calibration, prior, parts, search)
    gated, gate = _fit_regimes(
        X64,
        y,
        parts,
        lambda mask: _weights(ts, labels, mask, t.sample_weights),
        model,
        params,
        t,
        names,
    )
    gated_cal = _calibrate(gated.predict_proba(X64[parts["val"]]), y_val, w_val, t)
    return _FoldFit(fold, model, gated_cal, prior, parts, search, gated, gate, calibration)


def _compared(
    y: np.ndarray, proba: np.ndarray, prior: np.ndarray, ts: np.ndarray, horizon_ns: int, seed: int
) -> ComparedMetrics:
    # Skill and AUC with moving-block bootstrap intervals, as `scalper evaluate` computes them.
    ll = row_log_loss(y, proba)
    ll_prior = row_log_loss(y, prior_proba(prior, len(y)))
    skills, aucs = [], []
    for idx in block_bootstrap_indices(len(y), block_length(ts, horizon_ns), COMPARISON_REPLICATES, seed):
        skills.append(skill_score(float(ll[idx].mean()), float(ll_prior[idx].mean())))
        a = up_down_auc(y[idx], proba[idx])
        aucs.append(np.nan if a is None else a)
    si = percentile_interval(np.asarray(skills))
    ai = percentile_interval(np.asarray(aucs))
    return ComparedMetrics(
        rows=int(len(y)),
        log_loss=float(ll.mean()),
        prior_log_loss=float(ll_prior.mean()),
        log_loss_skill=skill_score(float(ll.mean()), float(ll_prior.mean())),
        log_loss_skill_interval=(si.low, si.high),
        auc_up_down=up_down_auc(y, proba),
        auc_up_down_interval=(ai.low, ai.high),
    )


def _importance(fit: _FoldFit, X: np.ndarray, y: np.ndarray, names: list[str], seed: int) -> FeatureImportance:
    # Gain is the pooled model's (a gated fold's regime models split their gain by regime); the permutation
    # is the shipped model's, gated or not, on the test span.
    gain = gain_shares(fit.model.booster_.feature_importance(importance_type="gain"))
    perm = permutation_log_loss(lambda rows: _predict(fit, rows)[1], X, y, N_CLASSES, seed)
    return FeatureImportance(
        gain_share={n: float(g) for n, g in zip(names, gain, strict=True)},
        permutation_log_loss={n: float(p) for n, p in zip(names, perm, strict=True)},
    )


def _fold_card(
    fit: _FoldFit, X64: np.ndarray, ts: np.ndarray, y: np.ndarray, names: list[str], seed: int, horizon_ns: int
) -> FoldCard:
    test = fit.parts["test"]
    raw, cal = _predict(fit, X64[test])
    yt = y[test].astype(np.int64)
    comparison = None
    if fit.gate is not None:
        single = _predict(fit, X64[test], single=True)[1]
        comparison = RegimeComparison(
            single=_compared(yt, single, fit.prior, ts[test], horizon_ns, seed),
            gated=_compared(yt, cal, fit.prior, ts[test], horizon_ns, seed),
            gate=fit.gate,
        )
    return FoldCard(
        index=fit.fold.index,
        train_span_ns=_span(ts, fit.parts["train"]),
        val_span_ns=_span(ts, fit.parts["val"]),
        test_span_ns=_span(ts, test),
        n_trees=int(fit.model.booster_.num_trees()),
        test=_metrics(yt, cal, fit.prior),
        test_uncalibrated=_metrics(yt, raw, fit.prior) if fit.calibration is not None else None,
        importance=_importance(fit, X64[test], yt, names, seed),
        regime_comparison=comparison,
    )


def _named_graph(onnx_bytes: bytes, name: str) -> bytes:
    # onnxmltools names each graph with a random UUID and lists the opset imports in set order, which
    # changes with each process's string hashing: a fixed name and sorted imports make the file (and its
    # sha256, which sweeps and backtest reports record) a function of the trained model alone.
    proto = onnx.load_from_string(onnx_bytes)
    proto.graph.name = name
    imports = [onnx.helper.make_opsetid(o.domain, o.version) for o in proto.opset_import]
    del proto.opset_import[:]
    proto.opset_import.extend(sorted(imports, key=lambda o: o.domain))
    return proto.SerializeToString()


def _label_horizon(
    cfg: LabelsConfig, rows: Sessions, horizon_ns: int, t: TrainConfig
) -> tuple[LabelSpec, HorizonLabels, list[Fold]]:
    # The folds' boundaries depend on the decision times only (in trading time: sessions back to back);
    # purging reads each label's end. A direction label ends at decision + horizon whatever its dead zone,
    # which the first fold's training rows choose.
    if cfg.kind == "first_passage":
        spec = first_passage_spec(cfg)
        labels = rows.labels(spec, horizon_ns)
        end = labels.end_ns - rows.offset_ns
        return spec, labels, walk_forward(rows.clock_ns, cfg.split, cfg.embargo_ns, t.folds, t.window, end)
    folds = walk_forward(rows.clock_ns, cfg.split, cfg.embargo_ns, t.folds, t.window, rows.clock_ns + horizon_ns)
    spec = choose_dead_zone(cfg, rows, horizon_ns, folds[0].train)
    labels = rows.labels(spec, horizon_ns)
    return spec, labels, folds


def train_horizon(
    rows: Sessions,
    horizon_ns: int,
    labels_cfg: LabelsConfig,
    train_cfg: TrainConfig,
    out_dir: Path,
    card_base: dict,
    fold: int | None = None,
) -> HorizonResult:
    """Label, fit every fold, export the last fold's calibrated model; write ``h<H>s.onnx`` and its card.

    With ``fold`` = k, fit and export walk-forward fold k alone (the folds are cut as for the full run);
    the card's spans, metrics and ``folds`` are then that fold's (a sweep scores each fold's own model).

    Raises
    ------
    TrainingError
        If a part of some fold has no labelled row or a training span lacks a class.
    ValueError
        If the folds cannot be cut (``models.split.walk_forward``) or the labels are misconfigured; with a
        regime gate, if the feature set has no regime feature or a regime holds no training row
        (``models.regime.regime_thresholds``).
    onnx_export.ParityError
        If ONNX Runtime and LightGBM (with the calibration) disagree (nothing is written then).
    """
    horizon_s = horizon_ns / 1e9
    spec, labels, folds = _label_horizon(labels_cfg, rows, horizon_ns, train_cfg)
    if fold is not None:
        folds = folds[fold : fold + 1]  # cut with every fold, so its spans and labels are the full run's
    ts = rows.ts
    X32 = rows.X.astype(np.float32)  # the model input dtype: training and ONNX inference see identical values
    X64 = X32.astype(np.float64)
    y = labels.y
    inner = (rows.clock_ns, labels.end_ns - rows.offset_ns, labels_cfg)
    names = card_base["feature_names"]
    fits = [_fit_fold(X64, ts, labels, f, train_cfg, horizon_s, inner, names) for f in folds]
    fold_cards = [_fold_card(fit, X64, ts, y, names, train_cfg.seed, horizon_ns) for fit in fits]
    last = fits[-1]
    metrics = {}
    for name, mask in last.parts.items():
        metrics[name] = _metrics(y[mask].astype(np.int64), _predict(last, X64[mask])[1], last.prior)
    if last.calibration is not None:
        test = last.parts["test"]
        metrics["test_uncalibrated"] = _metrics(y[test].astype(np.int64), _predict(last, X64[test])[0], last.prior)
    if last.gated is None:
        onnx_bytes = to_onnx(last.model, X32.shape[1], last.calibration)
    else:
        onnx_bytes = to_onnx_gated(last.gated, X32.shape[1], last.calibration)
    onnx_bytes = _named_graph(onnx_bytes, f"h{horizon_s:g}s")
    parity = parity_check(last.gated or last.model, onnx_bytes, X32, calibration=last.calibration)
    stem = f"h{horizon_s:g}s"
    onnx_path = out_dir / f"{stem}.onnx"
    card = ModelCard(
        model_file=onnx_path.name,
        horizon_s=horizon_s,
        classes=list(CLASS_NAMES),
        input_name=INPUT_NAME,
        probabilities_output=PROBABILITIES,
        dead_zone_ticks=spec.dead_zone_ticks,
        train_span_ns=_span(ts, last.parts["train"]),
        val_span_ns=_span(ts, last.parts["val"]),
        test_span_ns=_span(ts, last.parts["test"]),
        n_trees=int(last.model.booster_.num_trees()),
        params={
            **{
                k: v
                for k, v in last.model.get_params().items()
                if isinstance(v, (int, float, str)) and not isinstance(v, bool)
            },
            # The chosen values are among the model's own parameters above; this says they were searched.
            **(
                {}
                if last.search is None
                else {
                    "search": "optuna",
                    "search_trials": last.search.trials,
                    "search_inner_log_loss": last.search.inner_log_loss,
                }
            ),
        },
        parity_max_abs_diff=parity,
        metrics=metrics,
        labels=spec,
        calibration=None if last.calibration is None else last.calibration.summary(),
        sample_weights=train_cfg.sample_weights,
        window=train_cfg.window,
        folds=fold_cards,
        regime_gate=last.gate,
        **card_base,
    )
    save_onnx(onnx_bytes, onnx_path)
    card.save(out_dir / f"{stem}.card.json")
    return HorizonResult(horizon_s, card, onnx_path)


def train_models(
    ticks: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    features_cfg: FeaturesConfig,
    labels_cfg: LabelsConfig,
    train_cfg: TrainConfig,
    on_horizon=None,
    fold: int | None = None,
) -> list[HorizonResult]:
    """Build the decision rows of one or more tick files and train every configured horizon.

    Parameters
    ----------
    ticks : path or sequence of paths
        Schema-v1 tick files of one instrument (venue, symbol, tick size), sessions in time order and
        not overlapping. Each is replayed and labelled on its own (features and labels never cross a
        file); the walk-forward folds cut their concatenated rows.
    out_dir : path
        Directory for ``h<H>s.onnx`` and ``h<H>s.card.json`` (created).
    features_cfg, labels_cfg, train_cfg
        Grid and buffers; label kind, horizons, dead zone or barriers, split shares and embargo;
        LightGBM parameters, folds, window, calibration and sample weights. A first_passage config
        needs its barriers set (``LabelsConfig.with_trade`` fills them from the trade's config).
    on_horizon : callable, optional
        Called with each :class:`HorizonResult` as it is written (progress reporting).
    fold : int, optional
        Train and ship walk-forward fold ``fold`` (0-based) alone instead of all of them (:func:`train_horizon`).

    Raises
    ------
    ValueError
        If no file is given, the files' instruments differ or their sessions overlap, ``fold`` is not
        in ``[0, train_cfg.folds)``, or as :func:`train_horizon` raises.
    models.search.SearchError
        If ``train_cfg.search`` is "optuna" and Optuna is missing or a training span is too small to split.
    """
    files = [Path(ticks)] if isinstance(ticks, (str, Path)) else [Path(t) for t in ticks]
    if not files:
        raise ValueError("no tick file to train on")
    if fold is not None and not 0 <= fold < train_cfg.folds:
        raise ValueError(f"fold {fold} is not one of the {train_cfg.folds} walk-forward folds (0-based)")
    out_dir = Path(out_dir)
    if labels_cfg.kind == "first_passage":
        first_passage_spec(labels_cfg)  # refuse unset barriers before the feature pass
    fc = features_cfg
    matrices, paths, inst = [], [], None
    for f in files:
        data = tickfile.read(f)
        key = (data.instrument.venue, data.instrument.symbol, data.instrument.tick_size)
        if inst is not None and key != (inst.venue, inst.symbol, inst.tick_size):
            raise ValueError(
                f"{f}: instrument {key} differs from {files[0].name}'s {(inst.venue, inst.symbol, inst.tick_size)}"
            )
        inst = data.instrument
        matrices.append(compute_features(data, FeatureState.from_config(fc)))
        paths.append(touch_path(data) if labels_cfg.kind == "first_passage" else None)
    rows = Sessions(tuple(matrices), tuple(paths))
    assert inst is not None  # for mypy: files is not empty
    out_dir.mkdir(parents=True, exist_ok=True)
    shas = [tickfile.file_sha256(f) for f in files]
    card_base = dict(
        feature_set_version=fc.set,
        feature_names=list(feature_names(fc.set)),
        decision_grid_ms=fc.grid_ms,
        instrument={
            "venue": inst.venue,
            "symbol": inst.symbol,
            "tick_size": inst.tick_size,
            "lot_size": inst.lot_size,
            "source": inst.source,
        },
        # The last file holds the end of every test span; data_files names every file the rows came from.
        data_file=files[-1].name,
        data_sha256=shas[-1],
        data_files=[{"file": f.name, "sha256": sha} for f, sha in zip(files, shas, strict=True)],
        embargo_s=labels_cfg.embargo_ns / 1e9,
        versions=_versions(),
        synthetic=inst.source.startswith("synthetic"),
    )
    results = []
    for h in labels_cfg.horizons_s:
        res = train_horizon(rows, int(round(h * 1e9)), labels_cfg, train_cfg, out_dir, card_base, fold)
        results.append(res)
        if on_horizon is not None:
            on_horizon(res)
    return results
