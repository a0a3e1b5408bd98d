"""Export a trained LightGBM classifier (and its calibration) to ONNX and prove both give the same probabilities."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import onnxmltools
import onnxruntime as ort
from onnxmltools.convert.common.data_types import FloatTensorType

from scalper.models.calibration import Calibration, IsotonicCalibration, TemperatureCalibration, calibrate_graph
from scalper.models.regime import GatedModel, gated_graph

INPUT_NAME = "input"
PROBABILITIES = "probabilities"
RAW_PROBABILITIES = "raw_probabilities"  # the tree ensemble's output inside a calibrated graph
PARITY_TOLERANCE = 1e-5
# onnxmltools' LightGBM converter supports up to this main-domain opset.
TARGET_OPSET = 15


class ParityError(RuntimeError):
    """ONNX Runtime and LightGBM disagree on some probability by more than the tolerance."""


def _float32_floor(text: str) -> str:
    # The largest float32 <= each threshold: for float32 inputs, x <= t exactly when x <= floor32(t).
    if not text.strip():
        return text  # a tree that is a single leaf has no threshold
    out = []
    for v in text.split(" "):
        t = float(v)
        t32 = np.float32(t)
        if float(t32) > t:
            t32 = np.nextafter(t32, np.float32(-np.inf))
        out.append(repr(float(t32)))
    return " ".join(out)


def snap_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """Return a copy of ``booster`` whose split thresholds are float32 values making the same decisions.

    ONNX tree ensembles store thresholds as float32 rounded to nearest, so a double threshold just
    below a float32 feature value can round above it and flip that row's branch. Rounding each
    threshold *down* to a float32 keeps every decision on float32 inputs (the model's input dtype).
    """
    lines = []
    for line in booster.model_to_string().splitlines():
        if line.startswith("tree_sizes="):
            continue  # byte offsets of the trees: stale once thresholds change length; optional
        if line.startswith("threshold="):
            line = "threshold=" + _float32_floor(line[len("threshold=") :])
        lines.append(line)
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def to_onnx(model, n_features: int, calibration: Calibration | None = None) -> bytes:
    """Convert a fitted ``lightgbm.LGBMClassifier`` to a serialized ONNX model.

    The graph takes ``input`` float32[N, n_features] and returns ``label`` int64[N] and
    ``probabilities`` float32[N, n_classes] (no ZipMap, so outputs can be preallocated).
    Thresholds are snapped first (:func:`snap_thresholds`), so ONNX decides as LightGBM does.
    With ``calibration``, ``probabilities`` are the calibrated ones and ``label`` their argmax: a
    temperature is folded into the tree ensemble's leaf weights, isotonic maps follow it as nodes
    (:mod:`scalper.models.calibration`).
    """
    onx = onnxmltools.convert_lightgbm(
        snap_thresholds(model.booster_),
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        zipmap=False,
        target_opset=TARGET_OPSET,
    )
    onx = _slim(onx)
    if calibration is None:
        return onx.SerializeToString()
    tree = onx.graph.node[0]
    if tree.op_type != "TreeEnsembleClassifier" or list(tree.output) != ["label", PROBABILITIES]:
        raise ValueError(f"cannot calibrate an unexpected converter graph: {[n.op_type for n in onx.graph.node]}")
    if isinstance(calibration, TemperatureCalibration):
        calibration.fold_into(tree)  # positive scaling keeps the argmax: the tree's label stays right
    else:
        tree.output[:] = ["raw_label", RAW_PROBABILITIES]
        onx = calibrate_graph(onx, calibration, RAW_PROBABILITIES, PROBABILITIES, "label")
    return onx.SerializeToString()


def to_onnx_gated(gated: GatedModel, n_features: int, calibration: Calibration | None = None) -> bytes:
    """Convert a :class:`~scalper.models.regime.GatedModel` to one serialized ONNX graph (same input and
    outputs as :func:`to_onnx`) that runs every regime's trees and selects each row's by the regime column.

    The calibration, if any, is one map applied *after* the selection (fitted on the gated model's
    validation probabilities): a temperature is folded into every tree ensemble (softmax(s / T) of the
    selected row equals the selected softmax(s / T)), isotonic maps follow the selection as nodes.
    """
    pooled = to_onnx(gated.pooled, n_features)
    regimes = [None if m is None else to_onnx(m, n_features) for m in gated.models]
    iso = isinstance(calibration, IsotonicCalibration)
    onx = gated_graph(
        regimes,
        pooled,
        gated.column,
        gated.thresholds,
        RAW_PROBABILITIES if iso else PROBABILITIES,
        "raw_label" if iso else "label",
    )
    if isinstance(calibration, TemperatureCalibration):
        for node in onx.graph.node:
            if node.op_type == "TreeEnsembleClassifier":
                calibration.fold_into(node)
    elif isinstance(calibration, IsotonicCalibration):
        onx = calibrate_graph(onx, calibration, RAW_PROBABILITIES, PROBABILITIES, "label")
    return onx.SerializeToString()


# What onnxmltools emits after the tree ensemble: two Identity, a Cast of the int64 label to int64
# and a Mul of the probabilities by one. They change no value, but ONNX Runtime runs each as a node of
# its own on every single-row call (figures: BENCHMARKS.md, 2026-12-06), so the ensemble's own outputs
# become the graph outputs.
_PASSTHROUGH = ["TreeEnsembleClassifier", "Identity", "Identity", "Cast", "Mul"]


def _slim(onx: onnx.ModelProto) -> onnx.ModelProto:
    graph = onx.graph
    if [n.op_type for n in graph.node] != _PASSTHROUGH or {o.name for o in graph.output} != {"label", PROBABILITIES}:
        return onx  # another converter version: keep its graph as it is
    tree = graph.node[0]
    tree.output[:] = ["label", PROBABILITIES]
    del graph.node[1:]
    del graph.initializer[:]
    for out in graph.output:
        if out.name == "label":
            out.type.tensor_type.elem_type = onnx.TensorProto.INT64
    onnx.checker.check_model(onx)
    return onx


def _with_raw_output(onnx_bytes: bytes) -> bytes:
    # A copy of a calibrated graph that also returns the trees' probabilities, for the check only: the
    # shipped graph keeps two outputs (inference binds each one to a buffer).
    onx = onnx.load_from_string(onnx_bytes)
    n_classes = onx.graph.output[-1].type.tensor_type.shape.dim[1].dim_value
    onx.graph.output.append(
        onnx.helper.make_tensor_value_info(RAW_PROBABILITIES, onnx.TensorProto.FLOAT, [None, n_classes or None])
    )
    return onx.SerializeToString()


def parity_check(
    model,
    onnx_bytes: bytes,
    X: np.ndarray,
    tolerance: float = PARITY_TOLERANCE,
    calibration: Calibration | None = None,
) -> float:
    """Run LightGBM and ONNX Runtime on ``X`` (float32[N, F]) and return the largest probability difference.

    ``model`` is an ``LGBMClassifier`` or a :class:`~scalper.models.regime.GatedModel` (the graph from
    :func:`to_onnx_gated`): the reference then chooses each row's model in numpy and predicts.

    With ``calibration`` (a graph from ``to_onnx(model, F, calibration)``), a temperature graph is
    compared with ``calibration.apply`` of LightGBM's probabilities; for isotonic maps two differences
    are checked: the trees' probabilities in the graph against LightGBM's, and the graph's calibrated
    probabilities against ``calibration.apply`` of those same tree probabilities (each part on its own
    input: a steep stretch of an isotonic map would magnify the trees' float32 rounding).

    Raises
    ------
    ParityError
        If any probability differs by more than ``tolerance``.
    """
    x32 = np.ascontiguousarray(X, dtype=np.float32)
    p_lgb = model.predict_proba(X.astype(np.float64))
    if not isinstance(calibration, IsotonicCalibration):
        sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        p_onnx = sess.run([PROBABILITIES], {INPUT_NAME: x32})[0]
        gaps = np.abs(p_onnx - (p_lgb if calibration is None else calibration.apply(p_lgb)))
    else:
        sess = ort.InferenceSession(_with_raw_output(onnx_bytes), providers=["CPUExecutionProvider"])
        p_onnx, raw = sess.run([PROBABILITIES, RAW_PROBABILITIES], {INPUT_NAME: x32})
        gaps = np.maximum(np.abs(raw - p_lgb), np.abs(p_onnx - calibration.apply(raw)))
    diff = float(np.max(gaps)) if len(X) else 0.0
    if not diff <= tolerance:
        row = int(np.argmax(np.max(gaps, axis=1)))
        raise ParityError(
            f"ONNX and LightGBM differ by {diff:.3g} > {tolerance:g} (first worst row {row}); model not saved"
        )
    return diff


def save_onnx(onnx_bytes: bytes, path: str | Path) -> None:
    Path(path).write_bytes(onnx_bytes)
