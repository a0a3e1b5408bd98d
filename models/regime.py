"""Regime-gated ensembles: one LightGBM per volatility regime, chosen per row by a feature column.

The regime of a decision row is read from one feature at decision time (``REGIME_FEATURES``: the
session-relative ``vol_regime_30s`` of feature set 2 when the set has it, else ``realized_vol_30s_bps``,
bps). ``bins - 1`` thresholds are quantiles of that column over the *training* rows only, stored as
float32 (the model's input dtype) so numpy and ONNX compare the same numbers. Row ``x`` is in regime
``k`` = the number of thresholds ``t`` with ``not x < t`` (``k`` in ``0 .. bins - 1``; a value equal to a
threshold belongs to the regime above it); a NaN regime feature takes the pooled model.

:class:`GatedModel` predicts in numpy (the parity reference); :func:`gated_graph` joins the regimes'
and the pooled model's converted tree ensembles into one ONNX graph with the usual ``input`` and
``label``/``probabilities`` outputs, selecting each row's probabilities with ``Less``/``Where`` nodes on
the regime column, so ``models.inference`` and the engine serve it unchanged. Each call runs every
regime's trees (a fixed cost per regime per call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REGIME_FEATURES = ("vol_regime_30s", "realized_vol_30s_bps")  # first one present in the feature set wins
_MAIN_OPSET = 13  # Where (9), IsNaN (9), Less (9), ArgMax with keepdims (1), Gather (1): 13 is what calibration uses


def regime_column(names: Sequence[str]) -> int:
    """Return the index in ``names`` of the regime feature (the first of ``REGIME_FEATURES`` present).

    Raises
    ------
    ValueError
        If the feature set has none of them.
    """
    for name in REGIME_FEATURES:
        if name in names:
            return list(names).index(name)
    raise ValueError(f"regime gate needs one of the features {REGIME_FEATURES}; the set has {list(names)}")


def regime_thresholds(x_train: np.ndarray, bins: int) -> np.ndarray:
    """Return float32[bins - 1], strictly increasing: the ``k / bins`` quantiles of the finite training values.

    Raises
    ------
    ValueError
        If ``bins`` < 2, no value is finite, or a regime would hold no training row (too few distinct values).
    """
    if bins < 2:
        raise ValueError(f"regime bins must be >= 2, got {bins}")
    x = np.asarray(x_train, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("regime feature has no finite value on the training rows")
    t = np.quantile(x, np.arange(1, bins) / bins).astype(np.float32)
    if (np.bincount(assign_regimes(x, t), minlength=bins) == 0).any():
        raise ValueError(f"regime thresholds {t.tolist()} leave a regime empty: the feature has too few values")
    return t


def assign_regimes(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Return int64[N]: each row's regime for regime-feature values ``x`` (compared as float32), -1 for NaN."""
    x32 = np.asarray(x, dtype=np.float32)
    t = np.asarray(thresholds, dtype=np.float32)
    k = (~(x32[:, None] < t[None, :])).sum(axis=1).astype(np.int64)
    k[np.isnan(x32)] = -1
    return k


@dataclass(frozen=True)
class GatedModel:
    """The numpy reference of a gated graph: ``models[k]`` predicts regime ``k``'s rows (None = the pooled model).

    ``predict_proba`` takes float[N, F] and returns float64[N, C], like ``LGBMClassifier.predict_proba``.
    """

    column: int
    thresholds: np.ndarray
    models: tuple[object | None, ...]
    pooled: object

    def regimes(self, X: np.ndarray) -> np.ndarray:
        return assign_regimes(np.asarray(X)[:, self.column], self.thresholds)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        out = np.asarray(self.pooled.predict_proba(X), dtype=np.float64)  # type: ignore[attr-defined]
        k = self.regimes(X)
        for i, m in enumerate(self.models):
            rows = np.flatnonzero(k == i)
            if m is not None and rows.size:
                out[rows] = m.predict_proba(X[rows])  # type: ignore[attr-defined]
        return out


def _tree_node(onx: onnx.ModelProto, prefix: str) -> onnx.NodeProto:
    nodes = list(onx.graph.node)
    if len(nodes) != 1 or nodes[0].op_type != "TreeEnsembleClassifier":
        raise ValueError(f"expected a single TreeEnsembleClassifier graph, got {[n.op_type for n in nodes]}")
    node = onnx.NodeProto()
    node.CopyFrom(nodes[0])
    node.name = f"{prefix}_trees"
    node.output[:] = [f"{prefix}_label", f"{prefix}_probabilities"]
    return node


def gated_graph(
    regime_graphs: Sequence[bytes | None],
    pooled_graph: bytes,
    column: int,
    thresholds: np.ndarray,
    probabilities: str,
    label: str,
) -> onnx.ModelProto:
    """Join converted tree-ensemble graphs into one graph that selects each row's regime model.

    ``regime_graphs[k]`` (None: regime ``k`` uses the pooled model) and ``pooled_graph`` are serialized
    one-node ``TreeEnsembleClassifier`` graphs on the same ``input`` float32[N, F] (``onnx_export.to_onnx``
    without calibration). The result returns ``label`` int64[N] (argmax of the selected probabilities)
    and ``probabilities`` float32[N, C] as :meth:`GatedModel.predict_proba` selects them: ``Gather`` the
    regime column, ``Less`` against each float32 threshold, ``Where`` from the top regime down, and
    ``IsNaN`` to the pooled model.

    Raises
    ------
    ValueError
        If ``len(regime_graphs) != len(thresholds) + 1`` or a graph is not a single tree ensemble.
    """
    t = np.asarray(thresholds, dtype=np.float32)
    if len(regime_graphs) != t.size + 1:
        raise ValueError(f"{len(regime_graphs)} regime graphs for {t.size} thresholds: need one more")
    base = onnx.load_from_string(pooled_graph)
    nodes = [_tree_node(base, "pooled")]
    outputs = []
    for k, g in enumerate(regime_graphs):
        if g is None:
            outputs.append("pooled_probabilities")
        else:
            nodes.append(_tree_node(onnx.load_from_string(g), f"r{k}"))
            outputs.append(f"r{k}_probabilities")
    inits = [
        numpy_helper.from_array(np.array([column], dtype=np.int64), "regime_column"),
        *(numpy_helper.from_array(np.array(v, dtype=np.float32), f"regime_t{k}") for k, v in enumerate(t)),
    ]
    x_in = base.graph.input[0].name
    nodes.append(helper.make_node("Gather", [x_in, "regime_column"], ["regime_x"], axis=1))
    nodes.append(helper.make_node("IsNaN", ["regime_x"], ["regime_nan"]))
    selected = outputs[-1]
    for k in range(t.size - 1, -1, -1):
        nodes.append(helper.make_node("Less", ["regime_x", f"regime_t{k}"], [f"regime_lt{k}"]))
        out = f"regime_sel{k}"
        nodes.append(helper.make_node("Where", [f"regime_lt{k}", outputs[k], selected], [out]))
        selected = out
    nodes.append(helper.make_node("Where", ["regime_nan", "pooled_probabilities", selected], [probabilities]))
    nodes.append(helper.make_node("ArgMax", [probabilities], [label], axis=1, keepdims=0))
    declared = [o for o in base.graph.output if o.name != "label"][0].type.tensor_type.shape.dim
    n_classes = declared[1].dim_value or None if len(declared) == 2 else None
    graph = helper.make_graph(
        nodes,
        "regime_gated",
        [base.graph.input[0]],
        [
            helper.make_tensor_value_info(label, TensorProto.INT64, [None]),
            helper.make_tensor_value_info(probabilities, TensorProto.FLOAT, [None, n_classes]),
        ],
        initializer=inits,
    )
    opsets = {o.domain: o.version for o in base.opset_import}
    main = max(opsets.pop("", 0), opsets.pop("ai.onnx", 0), _MAIN_OPSET)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", main), *(helper.make_opsetid(d, v) for d, v in opsets.items())],
        producer_name=base.producer_name,
        ir_version=base.ir_version,
    )
    onnx.checker.check_model(model)
    return model
