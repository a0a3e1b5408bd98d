"""Training rows: features at each decision point and the direction label for each horizon."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalper.features.batch import FeatureMatrix
from scalper.features.registry import FEATURE_NAMES
from scalper.models.labels import default_dead_zone, direction_labels

SPREAD_COLUMN = FEATURE_NAMES.index("spread_ticks")


@dataclass(frozen=True)
class LabelledRows:
    """Decision rows with one label vector per horizon.

    Attributes
    ----------
    ts : ndarray
        int64[M], decision times, ns.
    X : ndarray
        float32[M, F]: the model input dtype, so training and ONNX inference see identical values.
    labels : dict[int, ndarray]
        Horizon (ns) -> int8[M] labels (``models.labels``), -1 where the horizon runs past the data.
    dead_zone_ticks : float
        The flat band used for every horizon, ticks.
    """

    ts: np.ndarray
    X: np.ndarray
    labels: dict[int, np.ndarray]
    dead_zone_ticks: float


def label_rows(
    fm: FeatureMatrix,
    horizons_ns: list[int],
    dead_zone_ticks: float | None = None,
    dead_zone_rows: np.ndarray | None = None,
) -> LabelledRows:
    """Label every decision row of ``fm`` for each horizon.

    The label at decision time ``g`` compares the mid as of ``g`` with the mid as of ``g + h``;
    both come from the mid series of the same replay, so no feature sees past ``g``.
    ``dead_zone_ticks`` defaults to half the median spread over the rows selected by the boolean
    mask ``dead_zone_rows`` (all rows when None): pass the training rows so the test span does not
    leak into this choice.
    """
    if dead_zone_ticks is None:
        spreads = fm.X[:, SPREAD_COLUMN] if dead_zone_rows is None else fm.X[dead_zone_rows, SPREAD_COLUMN]
        dz = default_dead_zone(spreads)
    else:
        dz = float(dead_zone_ticks)
    now = fm.mid_at(fm.ts)
    last_ts = fm.mid_ts[-1] if fm.mid_ts.size else np.iinfo(np.int64).min
    labels = {}
    for h in horizons_ns:
        later = fm.mid_at(fm.ts + h)
        later[fm.ts + h > last_ts] = np.nan
        labels[int(h)] = direction_labels(now, later, dz)
    return LabelledRows(ts=fm.ts, X=fm.X.astype(np.float32), labels=labels, dead_zone_ticks=dz)
