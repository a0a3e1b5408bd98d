"""ONNX Runtime inference with one thread and preallocated input/output buffers (IO binding)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from scalper.features.registry import FEATURE_SET_VERSION
from scalper.ingest.tickfile import Instrument
from scalper.models.card import ModelCard, ModelCardMismatch

CARD_SUFFIX = ".card.json"
ALL_CORES_FROM_ROWS = 256  # predict_batch: from this many rows on, a session on every core


def _first_line(exc: Exception) -> str:
    # ONNX Runtime's messages repeat the path and can run over several lines; one line is enough.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _session(path: Path, threads: int = 1) -> ort.InferenceSession:
    # One thread and sequential execution for single rows: a row gains nothing from parallelism and
    # the second core belongs to the feed and I/O. Batches (backtests) split rows over every core.
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxPredictor:
    """Class probabilities of one horizon's model, one row at a time without allocation.

    Parameters
    ----------
    onnx_path : path
        The ``.onnx`` file; its card is ``<stem>.card.json`` beside it.

    Raises
    ------
    ModelCardMismatch
        If the card is missing or invalid, its features differ from the engine's, the ``.onnx`` is
        missing or not a loadable ONNX graph, or the graph's input / output names and shapes differ
        from what the card says.
    """

    def __init__(self, onnx_path: str | Path, feature_set: int = FEATURE_SET_VERSION) -> None:
        path = Path(onnx_path)
        card_path = path.with_name(path.stem + CARD_SUFFIX)
        if not card_path.exists():
            raise ModelCardMismatch(f"{path}: no model card {card_path.name} beside it")
        self.card = ModelCard.load(card_path)
        self.card.check_features(str(card_path), feature_set)
        self.path = path
        try:
            self.session = _session(path)
        except Exception as exc:
            raise ModelCardMismatch(f"{path}: not a valid ONNX model ({_first_line(exc)})") from exc
        self._batch_session: ort.InferenceSession | None = None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        n_feat = len(self.card.feature_names)
        if self.card.input_name not in inputs or inputs[self.card.input_name].shape[-1] != n_feat:
            raise ModelCardMismatch(f"{path}: graph input does not take {self.card.input_name}[N, {n_feat}]")
        if self.card.probabilities_output not in outputs:
            raise ModelCardMismatch(f"{path}: graph has no output {self.card.probabilities_output!r}")
        self.horizon_ns = int(round(self.card.horizon_s * 1e9))
        self.x = np.zeros((1, n_feat), dtype=np.float32)
        self.proba = np.zeros((1, len(self.card.classes)), dtype=np.float32)
        self._label = np.zeros(1, dtype=np.int64)
        self._binding = self.session.io_binding()
        self._binding.bind_ortvalue_input(self.card.input_name, ort.OrtValue.ortvalue_from_numpy(self.x))
        for name in outputs:
            buf = self.proba if name == self.card.probabilities_output else self._label
            self._binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(buf))
        run_options = ort.RunOptions()
        # Private ONNX Runtime API, on purpose: the public InferenceSession.run_with_iobinding wraps the
        # C binding's call in per-call Python bookkeeping (graph-capture checks for other execution
        # providers) that costs several times the model itself on one row (BENCHMARKS.md, 2026-12-06).
        # `_sess` / `_iobinding` are the C objects under the public wrappers; pyproject.toml pins
        # onnxruntime to the tested minor versions and tests/unit/test_onnx_binding.py fails when an
        # upgrade removes them or changes what the call does. Without them the public wrapper is used.
        c_session = getattr(self.session, "_sess", None)
        c_binding = getattr(self._binding, "_iobinding", None)
        if c_session is not None and c_binding is not None:
            self._run = functools.partial(c_session.run_with_iobinding, c_binding, run_options)
        else:
            self._run = functools.partial(self.session.run_with_iobinding, self._binding, run_options)
        self.uses_c_binding = c_session is not None and c_binding is not None
        """True when :meth:`predict` calls ONNX Runtime's C binding directly, False on the public wrapper."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return the class probabilities for one feature row.

        Parameters
        ----------
        features : ndarray
            float64 or float32[F], in the card's feature order.

        Returns
        -------
        ndarray
            float32[n_classes] (``down, flat, up``): a view of the preallocated output, overwritten
            by the next call; copy it to keep it.
        """
        self.x[0] = features
        self._run()
        return self.proba[0]

    def predict_batch(self, X: np.ndarray) -> np.ndarray:
        """Return float32[N, n_classes] probabilities for float32[N, F] rows in one call.

        From ``ALL_CORES_FROM_ROWS`` rows on, runs on a second session that uses every core (0 threads:
        ONNX Runtime's default, one per physical core), made at the first such call: a large batch
        splits over the cores. Smaller batches stay on the one-thread session: handing a few rows to a
        thread pool costs what it saves, and in a backtest the other core runs the feature pass. Figures:
        BENCHMARKS.md, 2026-12-06. Same graph, same float32 arithmetic per row as :meth:`predict`.
        """
        x = np.ascontiguousarray(X, dtype=np.float32)
        session = self.session
        if len(x) >= ALL_CORES_FROM_ROWS:
            if self._batch_session is None:
                self._batch_session = _session(self.path, threads=0)
            session = self._batch_session
        return session.run([self.card.probabilities_output], {self.card.input_name: x})[0]


@dataclass(frozen=True)
class ModelSet:
    """The predictors of a model directory, one per horizon, shortest horizon first."""

    directory: Path
    predictors: tuple[OnnxPredictor, ...]

    @property
    def horizons_ns(self) -> tuple[int, ...]:
        return tuple(p.horizon_ns for p in self.predictors)

    def check_compatible(self, grid_ms: float, instrument: Instrument) -> None:
        """Refuse models trained on another decision grid, venue, symbol or tick size.

        Features such as spread and micro-price are in ticks, and a model learns one instrument's
        microstructure: the card's venue, symbol and tick size must be the traded instrument's.

        Raises
        ------
        ModelCardMismatch
            Naming the model file and both values.
        """
        for p in self.predictors:
            card = p.card
            where = self.directory / card.model_file
            if abs(card.decision_grid_ms - grid_ms) > 1e-9:
                raise ModelCardMismatch(
                    f"{where}: trained on a {card.decision_grid_ms:g} ms grid, engine runs {grid_ms:g} ms"
                )
            trained = (str(card.instrument.get("venue")), str(card.instrument.get("symbol")))
            if trained != (instrument.venue, instrument.symbol):
                raise ModelCardMismatch(
                    f"{where}: trained on {' '.join(trained)}"
                    f", this engine trades {instrument.venue} {instrument.symbol}"
                )
            trained_tick = card.instrument.get("tick_size")
            tick_size = instrument.tick_size
            if not isinstance(trained_tick, (int, float)):
                raise ModelCardMismatch(
                    f"{where}: the card gives no tick size ({trained_tick!r}), this engine trades {tick_size:g}"
                )
            if abs(trained_tick - tick_size) > 1e-12 * max(1.0, tick_size):
                raise ModelCardMismatch(f"{where}: trained with tick size {trained_tick:g}, data has {tick_size:g}")


def load_model_dir(directory: str | Path, feature_set: int = FEATURE_SET_VERSION) -> ModelSet:
    """Load every ``*.onnx`` of ``directory`` with its card, refusing the whole set on any mismatch.

    ``feature_set`` is the set the caller computes (``[features] set``); a model of another set is refused.

    Raises
    ------
    ModelCardMismatch
        If the directory holds no model, a card is missing or does not fit the engine, a card's
        ``.onnx`` is missing (a horizon would silently drop out), an ``.onnx`` is not a valid ONNX
        graph, or two models share a horizon. The message names the file.
    """
    directory = Path(directory)
    paths = sorted(directory.glob("*.onnx"))
    for card_path in sorted(directory.glob("*" + CARD_SUFFIX)):
        onnx_path = card_path.with_name(card_path.name[: -len(CARD_SUFFIX)] + ".onnx")
        if not onnx_path.is_file():
            raise ModelCardMismatch(f"{card_path}: its model {onnx_path.name} is missing")
    if not paths:
        raise ModelCardMismatch(f"{directory}: no .onnx model found")
    predictors = sorted((OnnxPredictor(p, feature_set) for p in paths), key=lambda p: p.horizon_ns)
    horizons = [p.horizon_ns for p in predictors]
    if len(set(horizons)) != len(horizons):
        raise ModelCardMismatch(f"{directory}: two models share a horizon ({horizons})")
    return ModelSet(directory, tuple(predictors))
