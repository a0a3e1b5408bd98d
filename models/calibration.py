"""Probability calibration shipped inside the ONNX graph: per-class isotonic maps, then renormalised.

API: :func:`fit_isotonic` fits one isotonic regression per class (one against the rest) on a span the
model was not fitted on (the walk-forward validation span, between training and test); the returned
:class:`Calibration` applies itself in numpy (:meth:`Calibration.apply`) and as ONNX nodes
(:func:`calibrate_graph`) that compute the same float32 arithmetic, so the daemon, the backtest and
``models/inference.py`` read calibrated probabilities from the same ``probabilities`` output with no
change. Zadrozny & Elkan (2002), "Transforming classifier scores into accurate multiclass probability
estimates" (KDD): one-against-rest isotonic maps, renormalised to sum to one.

Each map is the isotonic fit (scikit-learn's ``IsotonicRegression``) sampled at quantiles of the
calibration rows' probabilities ``x_0 < ... < x_K``, linear between them and flat outside, written as
``y(p) = y_0 + sum_k slope_k * clip(p - x_k, 0, x_{k+1} - x_k)`` so that it is a handful of
element-wise ONNX ops over a [N, C, K] tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.isotonic import IsotonicRegression

MIN_PROBABILITY = 1e-6  # floor of each calibrated class before renormalising: a log-loss never sees 0
# Knots per class: an isotonic fit on many rows has hundreds of plateaus; a coarser map is as good out
# of sample and keeps the graph's per-row work small.
MAX_KNOTS = 32
_OPSET = 13  # Unsqueeze and ReduceSum take their axes as an input from this main-domain opset on


@dataclass(frozen=True)
class Calibration:
    """Per-class piecewise-linear maps of the raw class probabilities.

    Attributes
    ----------
    method : str
        ``"isotonic"``.
    knots, widths, slopes : ndarray
        float32[C, K]: knot positions, distance to the next knot (0 for padding), slope after each knot.
    base : ndarray
        float32[C]: the map's value at and below its first knot.
    """

    method: str
    knots: np.ndarray
    widths: np.ndarray
    slopes: np.ndarray
    base: np.ndarray

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities, float32[N, C], for raw ``proba`` float32/float64[N, C]."""
        p = np.asarray(proba, dtype=np.float32)
        d = np.minimum(np.maximum(p[:, :, None] - self.knots[None], np.float32(0)), self.widths[None])
        cal = (d * self.slopes[None]).sum(axis=2, dtype=np.float32) + self.base[None]
        cal = np.maximum(cal, np.float32(MIN_PROBABILITY))
        return cal / cal.sum(axis=1, keepdims=True, dtype=np.float32)

    def summary(self) -> dict[str, str | int]:
        """What the model card records: the method and the number of knots per class."""
        return {"method": self.method, "knots_per_class": int(self.knots.shape[1])}


def _knots(p: np.ndarray, iso: IsotonicRegression, max_knots: int) -> tuple[np.ndarray, np.ndarray]:
    # The fitted step function sampled at quantiles of the calibration rows' probabilities, joined by
    # straight lines: still monotone, and each jump between plateaus is spread over a share of the
    # rows rather than a float32 rounding step, so the map does not magnify the trees' rounding.
    x = np.unique(np.quantile(p, np.linspace(0.0, 1.0, max_knots)))
    return x, np.asarray(iso.predict(x))


def fit_isotonic(
    proba: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, max_knots: int = MAX_KNOTS
) -> Calibration:
    """Fit one isotonic map per class on raw probabilities ``proba`` (float[N, C]) and labels ``y`` (int[N]).

    Parameters
    ----------
    proba : ndarray
        float32/float64[N, C], the model's raw probabilities on the calibration rows.
    y : ndarray
        int[N], class indices in ``[0, C)``.
    sample_weight : ndarray, optional
        float64[N], e.g. uniqueness weights.
    max_knots : int
        Largest number of knots kept per class (>= 2).

    Raises
    ------
    ValueError
        If the shapes disagree, there are no rows, a label is out of range or ``max_knots < 2``.
    """
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ValueError(f"need proba[N, C] and y[N] with N > 0, got {p.shape} and {y.shape}")
    n_classes = p.shape[1]
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got {int(y.min())}..{int(y.max())}")
    if max_knots < 2:
        raise ValueError(f"max_knots must be >= 2, got {max_knots}")
    maps = []
    for c in range(n_classes):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(p[:, c], (y == c).astype(np.float64), sample_weight=sample_weight)
        x, v = _knots(p[:, c], iso, max_knots)
        maps.append((x, v))
    k = max(max(len(x) for x, _ in maps) - 1, 1)
    knots = np.ones((n_classes, k), dtype=np.float32)
    widths = np.zeros((n_classes, k), dtype=np.float32)
    slopes = np.zeros((n_classes, k), dtype=np.float32)
    base = np.zeros(n_classes, dtype=np.float32)
    for c, (x, v) in enumerate(maps):
        base[c] = v[0]
        x32 = x.astype(np.float32)
        knots[c, : len(x) - 1] = x32[:-1]
        widths[c, : len(x) - 1] = np.diff(x32)
        # Slopes over the float32 widths, so the map reaches the fitted value at every knot in float32.
        w = np.diff(x32).astype(np.float64)
        slopes[c, : len(x) - 1] = np.where(w > 0, np.diff(v) / np.where(w > 0, w, 1.0), 0.0)
    return Calibration("isotonic", knots, widths, slopes, base)


def calibrate_graph(
    model: onnx.ModelProto, cal: Calibration, raw_output: str, probabilities: str, label: str
) -> onnx.ModelProto:
    """Append ``cal`` to ``model``: node output ``raw_output`` float32[N, C] becomes graph outputs
    ``probabilities`` (float32[N, C], calibrated, rows sum to 1) and ``label`` (int64[N], their argmax).

    The nodes compute :meth:`Calibration.apply` in float32 (Unsqueeze, Sub, Max, Min, Mul, ReduceSum,
    Add, Max, ReduceSum, Div, ArgMax; main-domain opset 13 or later).
    """
    g = model.graph
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = max(imp.version, _OPSET)
    consts = {
        "cal_knots": cal.knots,
        "cal_widths": cal.widths,
        "cal_slopes": cal.slopes,
        "cal_base": cal.base,
        "cal_zero": np.zeros((), dtype=np.float32),
        "cal_floor": np.array(MIN_PROBABILITY, dtype=np.float32),
        "cal_axis1": np.array([1], dtype=np.int64),
        "cal_axis2": np.array([2], dtype=np.int64),
    }
    g.initializer.extend(numpy_helper.from_array(v, name=k) for k, v in consts.items())
    g.node.extend(
        [
            helper.make_node("Unsqueeze", [raw_output, "cal_axis2"], ["cal_p3"]),
            helper.make_node("Sub", ["cal_p3", "cal_knots"], ["cal_d"]),
            helper.make_node("Max", ["cal_d", "cal_zero"], ["cal_dpos"]),
            helper.make_node("Min", ["cal_dpos", "cal_widths"], ["cal_seg"]),
            helper.make_node("Mul", ["cal_seg", "cal_slopes"], ["cal_rise"]),
            helper.make_node("ReduceSum", ["cal_rise", "cal_axis2"], ["cal_sum"], keepdims=0),
            helper.make_node("Add", ["cal_sum", "cal_base"], ["cal_y"]),
            helper.make_node("Max", ["cal_y", "cal_floor"], ["cal_yf"]),
            helper.make_node("ReduceSum", ["cal_yf", "cal_axis1"], ["cal_total"], keepdims=1),
            helper.make_node("Div", ["cal_yf", "cal_total"], [probabilities]),
            helper.make_node("ArgMax", [probabilities], [label], axis=1, keepdims=0),
        ]
    )
    n_classes = cal.knots.shape[0]
    del g.output[:]
    g.output.extend(
        [
            helper.make_tensor_value_info(label, TensorProto.INT64, [None]),
            helper.make_tensor_value_info(probabilities, TensorProto.FLOAT, [None, n_classes]),
        ]
    )
    onnx.checker.check_model(model)
    return model
