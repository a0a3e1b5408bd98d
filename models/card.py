"""Model cards: the JSON beside every .onnx that says what the model expects and how it scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scalper.features.registry import FEATURE_SET_VERSION, FEATURE_SETS

CARD_VERSION = 1


class ModelCardMismatch(ValueError):
    """A model does not fit the engine or cannot be loaded; the message names the file.

    Feature names or order, feature-set or card version, decision grid, instrument (venue, symbol,
    tick size), a card without its ``.onnx`` or an ``.onnx`` that is not a valid ONNX graph.
    """


class SplitMetrics(BaseModel):
    """Classification metrics on one span; log-loss in nats."""

    model_config = ConfigDict(extra="forbid")

    rows: int
    accuracy: float
    balanced_accuracy: float
    log_loss: float
    baseline_accuracy: float = Field(description="accuracy of always predicting the most frequent training class")
    baseline_balanced_accuracy: float
    baseline_log_loss: float = Field(description="log-loss of predicting the training class priors")
    class_counts: list[int]
    up_down_auc: float | None = Field(
        None, description="AUC of p_up / (p_up + p_down) on the rows labelled up or down (models.evaluation)"
    )
    ece: float | None = Field(None, description="class-wise expected calibration error (models.evaluation)")


class LabelSpec(BaseModel):
    """How a model's labels were made: enough to label new data the same way (``models.dataset``).

    ``kind`` "direction": ``dead_zone_ticks`` (ticks) and the rule that chose it ("ticks": given,
    "flat_share": the smallest reaching ``flat_share_target`` on the training rows, "half_median_spread");
    ``flat_share_train`` is the flat share it gave on the first fold's training rows. ``kind``
    "first_passage": the barriers (bps of entry), the order latency (ns) and the round-trip fee (bps).
    """

    model_config = ConfigDict(extra="forbid")

    kind: str = "direction"
    dead_zone_ticks: float | None = None
    dead_zone_rule: str | None = None
    flat_share_target: float | None = None
    flat_share_train: float | None = None
    take_profit_bps: float | None = None
    stop_loss_bps: float | None = None
    latency_ns: int | None = None
    round_trip_fee_bps: float | None = None


class FeatureImportance(BaseModel):
    """One fold model's feature importance, by feature name (``models/importance.py``)."""

    model_config = ConfigDict(extra="forbid")

    gain_share: dict[str, float] = Field(description="split gain per feature, as a share of the total")
    permutation_log_loss: dict[str, float] = Field(
        description="test-span log-loss rise (nats) when the feature's column is shuffled"
    )


class RegimeFit(BaseModel):
    """One regime of a gated model: its training rows and whether it has a model of its own."""

    model_config = ConfigDict(extra="forbid")

    regime: int
    train_rows: int
    own_model: bool
    n_trees: int | None = None
    fallback_reason: str | None = Field(None, description="why the pooled model serves this regime, if it does")


class RegimeGate(BaseModel):
    """How a regime-gated model chooses its sub-model (``models/regime.py``)."""

    model_config = ConfigDict(extra="forbid")

    feature: str = Field(description="the regime feature, read at decision time")
    thresholds: list[float] = Field(description="float32 quantiles of the feature over the training rows only")
    calibration: str = Field(description="where the calibration sits: 'after selection' or 'none'")
    regimes: list[RegimeFit]


class ComparedMetrics(BaseModel):
    """One model's test-span log-loss skill and up-vs-down AUC with block-bootstrap intervals
    (``models.evaluation``: moving blocks of the horizon, percentile intervals)."""

    model_config = ConfigDict(extra="forbid")

    rows: int
    log_loss: float
    prior_log_loss: float
    log_loss_skill: float
    log_loss_skill_interval: tuple[float | None, float | None]
    auc_up_down: float | None
    auc_up_down_interval: tuple[float | None, float | None]


class RegimeComparison(BaseModel):
    """The pooled single model and the regime-gated model on the same fold's test span."""

    model_config = ConfigDict(extra="forbid")

    single: ComparedMetrics
    gated: ComparedMetrics
    gate: RegimeGate


class FoldCard(BaseModel):
    """One walk-forward fold: its spans (first and last row time, ns), its model's test-span metrics and
    feature importance (None on cards written before it was recorded)."""

    model_config = ConfigDict(extra="forbid")

    index: int
    train_span_ns: tuple[int, int]
    val_span_ns: tuple[int, int]
    test_span_ns: tuple[int, int]
    n_trees: int
    test: SplitMetrics
    test_uncalibrated: SplitMetrics | None = None
    importance: FeatureImportance | None = None
    regime_comparison: RegimeComparison | None = Field(
        None, description="regime_gate set: the single and the gated model on this test span ('test' is the gated one)"
    )


class ModelCard(BaseModel):
    """Everything needed to trust and load one horizon's model."""

    model_config = ConfigDict(extra="forbid")

    card_version: int = CARD_VERSION
    model_file: str
    horizon_s: float
    classes: list[str]
    feature_set_version: int
    feature_names: list[str]
    input_name: str
    probabilities_output: str
    dead_zone_ticks: float | None = Field(description="direction labels' flat band, ticks; None for first_passage")
    decision_grid_ms: float
    instrument: dict[str, str | float]
    data_file: str
    data_sha256: str
    data_files: list[dict[str, str]] = Field(
        default_factory=list, description="every tick file the rows came from (file name, sha256), in time order"
    )
    train_span_ns: tuple[int, int]
    val_span_ns: tuple[int, int]
    test_span_ns: tuple[int, int]
    embargo_s: float
    n_trees: int
    params: dict[str, float | int | str]
    versions: dict[str, str]
    parity_max_abs_diff: float
    metrics: dict[str, SplitMetrics] = Field(
        description="the shipped model (the last fold's) on its train, val and test spans; test_uncalibrated:"
        " its trees alone on the test span"
    )
    synthetic: bool = False
    labels: LabelSpec = LabelSpec()
    calibration: dict[str, str | int | float] | None = Field(
        None, description="the calibration in the ONNX graph, if any"
    )
    sample_weights: str = "none"
    window: str = "expanding"
    folds: list[FoldCard] = Field(default_factory=list, description="every walk-forward fold, oldest first")
    regime_gate: RegimeGate | None = Field(None, description="the shipped graph's regime gate, if it is gated")

    @model_validator(mode="before")
    @classmethod
    def _labels_of_older_cards(cls, data: Any) -> Any:
        # Cards written before LabelSpec existed hold only the direction dead zone, always chosen as half
        # the median spread: label new data exactly as they were trained, not with LabelSpec's empty default.
        if isinstance(data, dict) and "labels" not in data and data.get("dead_zone_ticks") is not None:
            labels = {"kind": "direction", "dead_zone_ticks": data["dead_zone_ticks"]}
            return {**data, "labels": {**labels, "dead_zone_rule": "half_median_spread"}}
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        """Read a card from JSON.

        Raises
        ------
        ModelCardMismatch
            If the file is not a valid card of this version (the message names the file).
        """
        try:
            card = cls.model_validate_json(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ModelCardMismatch(f"{path}: not a valid model card ({exc})") from exc
        if card.card_version != CARD_VERSION:
            raise ModelCardMismatch(f"{path}: card_version {card.card_version}, this engine reads {CARD_VERSION}")
        return card

    def check_features(self, where: str = "model card", feature_set: int = FEATURE_SET_VERSION) -> None:
        """Refuse a card whose feature list differs from the engine's (names, order or set version).

        ``feature_set`` is the engine's set (``[features] set``, ``features/registry.py``).

        Raises
        ------
        ModelCardMismatch
            Naming the set versions, or the first differing position.
        """
        if self.feature_set_version != feature_set:
            raise ModelCardMismatch(
                f"{where}: feature set v{self.feature_set_version}, engine has v{feature_set}"
                f" (the engine computes the set of its [features] set = {feature_set})"
            )
        names = FEATURE_SETS[feature_set]
        if tuple(self.feature_names) != names:
            # The lists may differ in length: name the first differing feature, else the counts below.
            for i, (a, b) in enumerate(zip(self.feature_names, names, strict=False)):
                if a != b:
                    raise ModelCardMismatch(f"{where}: feature {i} is {a!r}, engine has {b!r}")
            raise ModelCardMismatch(f"{where}: {len(self.feature_names)} features, engine has {len(names)}")
