"""Training rows: features at each decision point and, per horizon, a label and the time it is decided.

API (used by ``models/train.py`` and the evaluation): :func:`horizon_labels` labels decision rows the
way a model card's :class:`~scalper.models.card.LabelSpec` says (so new data is labelled as the model's
training data was); :func:`choose_dead_zone` resolves a direction config's dead zone on training rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalper.features.batch import FeatureMatrix
from scalper.features.registry import FEATURE_NAMES
from scalper.models.card import LabelSpec
from scalper.models.config import LabelsConfig
from scalper.models.labels import (
    dead_zone_for_flat_share,
    default_dead_zone,
    direction_labels,
    first_passage,
)
from scalper.models.touchpath import TouchPath

SPREAD_COLUMN = FEATURE_NAMES.index("spread_ticks")


@dataclass(frozen=True)
class HorizonLabels:
    """Labels of every decision row for one horizon.

    Attributes
    ----------
    y : ndarray
        int8[M], DOWN=0, FLAT=1, UP=2, UNKNOWN=-1 (``models.labels``).
    end_ns : ndarray
        int64[M], when each label is decided, ns (decision time + horizon for direction labels).
    net_bps : ndarray or None
        float64[M, 2], first_passage only: net return of a long and a short (``FirstPassage.net_bps``).
    """

    y: np.ndarray
    end_ns: np.ndarray
    net_bps: np.ndarray | None = None


def mid_change(fm: FeatureMatrix, horizon_ns: int) -> np.ndarray:
    """Return float64[M], the mid change (ticks) from each decision to decision + ``horizon_ns``; NaN where
    the horizon runs past the data."""
    later = fm.mid_at(fm.ts + horizon_ns)
    last_ts = fm.mid_ts[-1] if fm.mid_ts.size else np.iinfo(np.int64).min
    later[fm.ts + horizon_ns > last_ts] = np.nan
    return later - fm.mid_at(fm.ts)


def choose_dead_zone(cfg: LabelsConfig, fm: FeatureMatrix, horizon_ns: int, rows: np.ndarray) -> LabelSpec:
    """Resolve a direction config's dead zone for one horizon on the boolean row mask ``rows`` (bool[M],
    the training rows, so the test span does not choose its own labels) and say which rule chose it.

    Raises
    ------
    ValueError
        If ``cfg.kind`` is not "direction" or ``rows`` selects nothing to choose from.
    """
    if cfg.kind != "direction":
        raise ValueError(f"choose_dead_zone needs kind = 'direction', got {cfg.kind!r}")
    change = mid_change(fm, horizon_ns)
    if cfg.dead_zone_ticks is not None:
        dz, rule = float(cfg.dead_zone_ticks), "ticks"
    elif cfg.flat_share is not None:
        dz, rule = dead_zone_for_flat_share(change[rows], cfg.flat_share), "flat_share"
    else:
        dz, rule = default_dead_zone(fm.X[rows, SPREAD_COLUMN]), "half_median_spread"
    known = rows & np.isfinite(change)
    flat = float(np.mean(np.abs(change[known]) <= dz)) if known.any() else None
    return LabelSpec(
        kind="direction",
        dead_zone_ticks=dz,
        dead_zone_rule=rule,
        flat_share_target=cfg.flat_share,
        flat_share_train=flat,
    )


def first_passage_spec(cfg: LabelsConfig) -> LabelSpec:
    """The LabelSpec of a first_passage config whose barriers are all set (``LabelsConfig.with_trade``).

    Raises
    ------
    ValueError
        Naming the first unset key.
    """
    for key in ("take_profit_bps", "stop_loss_bps", "latency_ms", "round_trip_fee_bps"):
        if getattr(cfg, key) is None:
            raise ValueError(f"labels.{key} is unset: first_passage labels need the trade's {key}")
    assert cfg.latency_ms is not None  # for mypy: checked above
    return LabelSpec(
        kind="first_passage",
        take_profit_bps=cfg.take_profit_bps,
        stop_loss_bps=cfg.stop_loss_bps,
        latency_ns=int(round(cfg.latency_ms * 1e6)),
        round_trip_fee_bps=cfg.round_trip_fee_bps,
    )


def horizon_labels(spec: LabelSpec, fm: FeatureMatrix, horizon_ns: int, path: TouchPath | None = None) -> HorizonLabels:
    """Label every decision row of ``fm`` for one horizon as ``spec`` says.

    Direction labels compare the mid as of the decision with the mid as of decision + horizon (both from
    the same replay, so no feature sees past its decision). First-passage labels need the touch path of
    the same data (:func:`~scalper.models.touchpath.touch_path`).

    Raises
    ------
    ValueError
        If ``spec`` lacks what its kind needs (dead zone, barriers, ``path``).
    """
    if spec.kind == "direction":
        if spec.dead_zone_ticks is None:
            raise ValueError("a direction LabelSpec needs dead_zone_ticks")
        y = direction_labels(np.zeros(len(fm.ts)), mid_change(fm, horizon_ns), spec.dead_zone_ticks)
        return HorizonLabels(y, fm.ts + horizon_ns)
    if spec.kind != "first_passage":
        raise ValueError(f"unknown label kind {spec.kind!r}")
    if path is None:
        raise ValueError("first_passage labels need the touch path of the data")
    if spec.take_profit_bps is None or spec.stop_loss_bps is None:
        raise ValueError("a first_passage LabelSpec needs take_profit_bps and stop_loss_bps")
    fp = first_passage(
        fm.ts,
        path,
        horizon_ns,
        spec.take_profit_bps,
        spec.stop_loss_bps,
        latency_ns=spec.latency_ns or 0,
        round_trip_fee_bps=spec.round_trip_fee_bps or 0.0,
    )
    y, end_ns = fp.classes()
    return HorizonLabels(y, end_ns, fp.net_bps)
