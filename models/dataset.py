"""Training rows: features at each decision point and, per horizon, a label and the time it is decided.

API (used by ``models/train.py`` and the evaluation): :func:`horizon_labels` labels the decision rows
of one replay the way a model card's :class:`~scalper.models.card.LabelSpec` says (so new data is
labelled as the model's training data was); :class:`Sessions` holds the rows of one or more tick files
(sessions) in time order and labels each file on its own, so no label reaches into another session;
:func:`choose_dead_zone` resolves a direction config's dead zone on training rows.
"""

from __future__ import annotations

import functools
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


def choose_dead_zone(cfg: LabelsConfig, rows: Sessions, horizon_ns: int, mask: np.ndarray) -> LabelSpec:
    """Resolve a direction config's dead zone for one horizon on the boolean row mask ``mask`` (bool[M],
    the training rows, so the test span does not choose its own labels) and say which rule chose it.

    Raises
    ------
    ValueError
        If ``cfg.kind`` is not "direction" or ``mask`` selects nothing to choose from.
    """
    if cfg.kind != "direction":
        raise ValueError(f"choose_dead_zone needs kind = 'direction', got {cfg.kind!r}")
    change = rows.mid_change(horizon_ns)
    if cfg.dead_zone_ticks is not None:
        dz, rule = float(cfg.dead_zone_ticks), "ticks"
    elif cfg.flat_share is not None:
        dz, rule = dead_zone_for_flat_share(change[mask], cfg.flat_share), "flat_share"
    else:
        dz, rule = default_dead_zone(rows.X[mask, SPREAD_COLUMN]), "half_median_spread"
    known = mask & np.isfinite(change)
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


@dataclass(frozen=True)
class Sessions:
    """Decision rows of one or more replays (tick files of one instrument), concatenated in time order.

    Attributes
    ----------
    matrices : tuple of FeatureMatrix
        One per file, in time order, not overlapping in time.
    paths : tuple of TouchPath or None
        The touch path of each file (needed by first-passage labels), or None.

    Raises
    ------
    ValueError
        If there is no file, the counts differ, or a file's first decision is not after the previous
        file's last one.
    """

    matrices: tuple[FeatureMatrix, ...]
    paths: tuple[TouchPath | None, ...]

    def __post_init__(self) -> None:
        if not self.matrices or len(self.matrices) != len(self.paths):
            raise ValueError(f"need one touch path (or None) per feature matrix, got {len(self.matrices)} matrices")
        for i in range(1, len(self.matrices)):
            prev, cur = self.matrices[i - 1].ts, self.matrices[i].ts
            if prev.size and cur.size and cur[0] <= prev[-1]:
                raise ValueError(f"session {i} starts at {cur[0]} ns, not after session {i - 1} ends ({prev[-1]} ns)")

    @functools.cached_property
    def ts(self) -> np.ndarray:
        """int64[M], every decision time, ns."""
        return np.concatenate([fm.ts for fm in self.matrices])

    @functools.cached_property
    def X(self) -> np.ndarray:
        """float64[M, F], every feature row."""
        return np.concatenate([fm.X for fm in self.matrices])

    @functools.cached_property
    def offset_ns(self) -> np.ndarray:
        """int64[M]: what :attr:`clock_ns` takes off each row's time: the gaps before its session, less 1 ns each."""
        offsets, gap = [], 0
        for i, fm in enumerate(self.matrices):
            if i and fm.ts.size:
                prev = next((m.ts[-1] for m in reversed(self.matrices[:i]) if m.ts.size), fm.ts[0] - 1)
                gap += int(fm.ts[0] - prev) - 1
            offsets.append(np.full(fm.ts.size, gap, dtype=np.int64))
        return np.concatenate(offsets)

    @functools.cached_property
    def clock_ns(self) -> np.ndarray:
        """int64[M]: decision times with the gaps between sessions squeezed out (each session starts 1 ns
        after the previous one ends), so a walk-forward cut by time shares rows by trading time, not by
        nights and weekends. Within a session it moves as ``ts``."""
        return self.ts - self.offset_ns

    def mid_change(self, horizon_ns: int) -> np.ndarray:
        """float64[M]: :func:`mid_change` of each session, concatenated."""
        return np.concatenate([mid_change(fm, horizon_ns) for fm in self.matrices])

    def labels(self, spec: LabelSpec, horizon_ns: int) -> HorizonLabels:
        """:func:`horizon_labels` of each session, concatenated."""
        parts = [horizon_labels(spec, fm, horizon_ns, path) for fm, path in zip(self.matrices, self.paths, strict=True)]
        net = None if any(p.net_bps is None for p in parts) else np.concatenate([p.net_bps for p in parts])
        return HorizonLabels(np.concatenate([p.y for p in parts]), np.concatenate([p.end_ns for p in parts]), net)
