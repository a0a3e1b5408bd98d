"""Probability calibration shipped inside the ONNX graph: temperature scaling or per-class isotonic maps.

API: :func:`fit_temperature` and :func:`fit_isotonic` fit a calibration on a span the model was not
fitted on (the walk-forward validation span, between training and test); the returned object applies
itself in numpy (``apply``) and inside the model's ONNX graph, so the daemon, the backtest and
``models/inference.py`` read calibrated probabilities from the same ``probabilities`` output with no
change: a temperature divides the tree ensemble's leaf weights (:meth:`TemperatureCalibration.fold_into`,
no extra node, no extra time per row), isotonic maps are appended as nodes computing the same float32
arithmetic (:func:`calibrate_graph`, a fixed cost per call for each node).

* Temperature scaling (Guo, Pleiss, Sun & Weinberger 2017, "On calibration of modern neural networks",
  ICML; the one-parameter multiclass form of Platt scaling): ``p_c ~ exp(log p_c / T)``, one ``T``
  fitted by weighted log-loss. It sharpens or softens the model without moving its class ranking.
* Isotonic (Zadrozny & Elkan 2002, "Transforming classifier scores into accurate multiclass probability
  estimates", KDD): one map per class against the rest, renormalised. Each map is scikit-learn's
  ``IsotonicRegression`` sampled at quantiles of the calibration rows' probabilities
  ``x_0 < ... < x_K``, linear between them and flat outside, written as
  ``y(p) = y_0 + sum_k slope_k * clip(p - x_k, 0, x_{k+1} - x_k)``: a handful of element-wise ONNX
  ops over a [N, C, K] tensor. More flexible, and so more prone to fit the calibration span's own
  class mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from scipy.optimize import minimize_scalar  # type: ignore[import-untyped]
from sklearn.isotonic import IsotonicRegression

MIN_PROBABILITY = 1e-6  # floor of each calibrated class before renormalising: a log-loss never sees 0
# Knots per class: an isotonic fit on many rows has hundreds of plateaus; a coarser map is as good out
# of sample and keeps the graph's per-row work small.
MAX_KNOTS = 32
_OPSET = 13  # Unsqueeze and ReduceSum take their axes as an input from this main-domain opset on
TEMPERATURE_BOUNDS = (0.05, 20.0)
_TINY = 1e-300  # log floor for probabilities a softmax rounded to 0


@dataclass(frozen=True)
class TemperatureCalibration:
    """``p_c ~ exp(log p_c / temperature)``, renormalised: ``softmax(scores / temperature)`` for a softmax model.

    Attributes
    ----------
    temperature : float
        > 1 softens the model's probabilities towards uniform, < 1 sharpens them.
    """

    temperature: float
    method: str = "temperature"

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities, float64[N, C], for raw ``proba`` float32/float64[N, C]."""
        x = np.log(np.maximum(np.asarray(proba, dtype=np.float64), _TINY)) / self.temperature
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def summary(self) -> dict[str, str | int | float]:
        """What the model card records: the method and the temperature."""
        return {"method": self.method, "temperature": float(self.temperature)}

    def fold_into(self, tree: onnx.NodeProto) -> None:
        """Divide the leaf weights of ``tree`` (a TreeEnsembleClassifier with a SOFTMAX post-transform) by
        the temperature: its probabilities become ``softmax(scores / T)`` = :meth:`apply` of the old ones,
        with no node added (each ONNX node costs a fixed time on every single-row call).

        Raises
        ------
        ValueError
            If ``tree`` is not such a node.
        """
        attrs = {a.name: a for a in tree.attribute}
        post = attrs["post_transform"].s if "post_transform" in attrs else b"NONE"
        if tree.op_type != "TreeEnsembleClassifier" or post != b"SOFTMAX" or "class_weights" not in attrs:
            raise ValueError(f"cannot fold a temperature into a {tree.op_type} node with post_transform {post!r}")
        inv_t = 1.0 / self.temperature
        weights = attrs["class_weights"]
        weights.floats[:] = [w * inv_t for w in weights.floats]
        if "base_values" in attrs:
            base = attrs["base_values"]
            base.floats[:] = [v * inv_t for v in base.floats]


def fit_temperature(
    proba: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> TemperatureCalibration:
    """Fit the temperature minimising the (weighted) log-loss of ``proba`` (float[N, C]) against ``y`` (int[N]).

    The temperature is searched in ``TEMPERATURE_BOUNDS`` (bounded scalar minimisation of the log of it).

    Raises
    ------
    ValueError
        If the shapes disagree, there are no rows or a label is out of range.
    """
    p = _check(proba, y)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    logp = np.log(np.maximum(p, _TINY))
    rows = np.arange(len(y))

    def loss(log_t: float) -> float:
        x = logp / np.exp(log_t)
        x = x - x.max(axis=1, keepdims=True)
        nll = np.log(np.exp(x).sum(axis=1)) - x[rows, y]
        return float(np.sum(w * nll) / np.sum(w))

    lo, hi = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    res = minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return TemperatureCalibration(float(np.exp(res.x)))


def _check(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ValueError(f"need proba[N, C] and y[N] with N > 0, got {p.shape} and {y.shape}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in [0, {p.shape[1]}), got {int(y.min())}..{int(y.max())}")
    return p


@dataclass(frozen=True)
class IsotonicCalibration:
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

    knots: np.ndarray
    widths: np.ndarray
    slopes: np.ndarray
    base: np.ndarray
    method: str = "isotonic"

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities, float32[N, C], for raw ``proba`` float32/float64[N, C]."""
        p = np.asarray(proba, dtype=np.float32)
        d = np.minimum(np.maximum(p[:, :, None] - self.knots[None], np.float32(0)), self.widths[None])
        cal = (d * self.slopes[None]).sum(axis=2, dtype=np.float32) + self.base[None]
        cal = np.maximum(cal, np.float32(MIN_PROBABILITY))
        return cal / cal.sum(axis=1, keepdims=True, dtype=np.float32)

    def summary(self) -> dict[str, str | int | float]:
        """What the model card records: the method and the number of knots per class."""
        return {"method": self.method, "knots_per_class": int(self.knots.shape[1])}

    def nodes(self, raw: str, out: str) -> tuple[dict[str, np.ndarray], list[onnx.NodeProto]]:
        consts = {
            "cal_knots": self.knots,
            "cal_widths": self.widths,
            "cal_slopes": self.slopes,
            "cal_base": self.base,
            "cal_zero": np.zeros((), dtype=np.float32),
            "cal_floor": np.array(MIN_PROBABILITY, dtype=np.float32),
            "cal_axis1": np.array([1], dtype=np.int64),
            "cal_axis2": np.array([2], dtype=np.int64),
        }
        nodes = [
            helper.make_node("Unsqueeze", [raw, "cal_axis2"], ["cal_p3"]),
            helper.make_node("Sub", ["cal_p3", "cal_knots"], ["cal_d"]),
            helper.make_node("Max", ["cal_d", "cal_zero"], ["cal_dpos"]),
            helper.make_node("Min", ["cal_dpos", "cal_widths"], ["cal_seg"]),
            helper.make_node("Mul", ["cal_seg", "cal_slopes"], ["cal_rise"]),
            helper.make_node("ReduceSum", ["cal_rise", "cal_axis2"], ["cal_sum"], keepdims=0),
            helper.make_node("Add", ["cal_sum", "cal_base"], ["cal_y"]),
            helper.make_node("Max", ["cal_y", "cal_floor"], ["cal_yf"]),
            helper.make_node("ReduceSum", ["cal_yf", "cal_axis1"], ["cal_total"], keepdims=1),
            helper.make_node("Div", ["cal_yf", "cal_total"], [out]),
        ]
        return consts, nodes


Calibration = TemperatureCalibration | IsotonicCalibration


def _knots(p: np.ndarray, iso: IsotonicRegression, max_knots: int) -> tuple[np.ndarray, np.ndarray]:
    # The fitted step function sampled at quantiles of the calibration rows' probabilities, joined by
    # straight lines: still monotone, and each jump between plateaus is spread over a share of the
    # rows rather than a float32 rounding step, so the map does not magnify the trees' rounding.
    x = np.unique(np.quantile(p, np.linspace(0.0, 1.0, max_knots)))
    return x, np.asarray(iso.predict(x))


def fit_isotonic(
    proba: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, max_knots: int = MAX_KNOTS
) -> IsotonicCalibration:
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
    p = _check(proba, y)
    n_classes = p.shape[1]
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
    return IsotonicCalibration(knots, widths, slopes, base)


def calibrate_graph(
    model: onnx.ModelProto, cal: IsotonicCalibration, raw_output: str, probabilities: str, label: str
) -> onnx.ModelProto:
    """Append ``cal`` to ``model``: node output ``raw_output`` float32[N, C] becomes graph outputs
    ``probabilities`` (float32[N, C], calibrated, rows sum to 1) and ``label`` (int64[N], their argmax).

    The nodes compute ``cal.apply`` in float32 with main-domain ops of opset 13 (the model's main-domain
    opset is raised to 13 if lower). A temperature needs no node: :meth:`TemperatureCalibration.fold_into`.
    """
    g = model.graph
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = max(imp.version, _OPSET)
    consts, nodes = cal.nodes(raw_output, probabilities)
    g.initializer.extend(numpy_helper.from_array(v, name=k) for k, v in consts.items())
    g.node.extend([*nodes, helper.make_node("ArgMax", [probabilities], [label], axis=1, keepdims=0)])
    # Keep the class count the converter declared for the output being replaced (None if it left it open).
    declared = [o.type.tensor_type.shape.dim for o in g.output if o.name == probabilities]
    n_classes = declared[0][1].dim_value or None if declared and len(declared[0]) == 2 else None
    del g.output[:]
    g.output.extend(
        [
            helper.make_tensor_value_info(label, TensorProto.INT64, [None]),
            helper.make_tensor_value_info(probabilities, TensorProto.FLOAT, [None, n_classes]),
        ]
    )
    onnx.checker.check_model(model)
    return model
