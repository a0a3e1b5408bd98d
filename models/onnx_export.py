"""Export a trained LightGBM classifier to ONNX and prove both give the same probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def to_onnx(model, n_features: int) -> bytes:
    """Convert a fitted ``lightgbm.LGBMClassifier`` to a serialized ONNX model.

    The graph takes ``input`` float32[N, n_features] and returns ``label`` int64[N] and
    ``probabilities`` float32[N, n_classes] (no ZipMap, so outputs can be preallocated).
    """
    onx = onnxmltools.convert_lightgbm(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        zipmap=False,
        target_opset=TARGET_OPSET,
    )
    return onx.SerializeToString()


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
        raise ParityError(f"ONNX and LightGBM differ by {diff:.3g} > {tolerance:g} (first worst row {row}); model not saved")
    return diff


def save_onnx(onnx_bytes: bytes, path: str | Path) -> None:
    Path(path).write_bytes(onnx_bytes)
