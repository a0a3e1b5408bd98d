"""Export a trained LightGBM classifier to ONNX and prove both give the same probabilities."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import onnxmltools
import onnxruntime as ort
from onnxmltools.convert.common.data_types import FloatTensorType

INPUT_NAME = "input"
PROBABILITIES = "probabilities"
PARITY_TOLERANCE = 1e-5
# onnxmltools' LightGBM converter supports up to this main-domain opset.
TARGET_OPSET = 15


class ParityError(RuntimeError):
    """ONNX Runtime and LightGBM disagree on some probability by more than the tolerance."""


def _float32_floor(text: str) -> str:
    # The largest float32 <= each threshold: for float32 inputs, x <= t exactly when x <= floor32(t).
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


def to_onnx(model, n_features: int) -> bytes:
    """Convert a fitted ``lightgbm.LGBMClassifier`` to a serialized ONNX model.

    The graph takes ``input`` float32[N, n_features] and returns ``label`` int64[N] and
    ``probabilities`` float32[N, n_classes] (no ZipMap, so outputs can be preallocated).
    Thresholds are snapped first (:func:`snap_thresholds`), so ONNX decides as LightGBM does.
    """
    onx = onnxmltools.convert_lightgbm(
        snap_thresholds(model.booster_),
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        zipmap=False,
        target_opset=TARGET_OPSET,
    )
    return _slim(onx).SerializeToString()


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


def parity_check(model, onnx_bytes: bytes, X: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> float:
    """Run LightGBM and ONNX Runtime on ``X`` (float32[N, F]) and return the largest probability difference.

    Raises
    ------
    ParityError
        If any probability differs by more than ``tolerance``.
    """
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    p_onnx = sess.run([PROBABILITIES], {INPUT_NAME: np.ascontiguousarray(X, dtype=np.float32)})[0]
    p_lgb = model.predict_proba(X.astype(np.float64))
    diff = float(np.max(np.abs(p_onnx - p_lgb))) if len(X) else 0.0
    if not diff <= tolerance:
        row = int(np.argmax(np.max(np.abs(p_onnx - p_lgb), axis=1)))
        raise ParityError(
            f"ONNX and LightGBM differ by {diff:.3g} > {tolerance:g} (first worst row {row}); model not saved"
        )
    return diff


def save_onnx(onnx_bytes: bytes, path: str | Path) -> None:
    Path(path).write_bytes(onnx_bytes)
