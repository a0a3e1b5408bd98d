"""Model cards: the JSON beside every .onnx that says what the model expects and how it scored."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from scalper.features.registry import FEATURE_NAMES, FEATURE_SET_VERSION

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
    dead_zone_ticks: float
    decision_grid_ms: float
    instrument: dict[str, str | float]
    data_file: str
    data_sha256: str
    train_span_ns: tuple[int, int]
    val_span_ns: tuple[int, int]
    test_span_ns: tuple[int, int]
    embargo_s: float
    n_trees: int
    params: dict[str, float | int | str]
    versions: dict[str, str]
    parity_max_abs_diff: float
    metrics: dict[str, SplitMetrics]
    synthetic: bool = False

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

    def check_features(self, where: str = "model card") -> None:
        """Refuse a card whose feature list differs from the engine's (names, order or set version).

        Raises
        ------
        ModelCardMismatch
            Naming the first differing position.
        """
        if self.feature_set_version != FEATURE_SET_VERSION:
            raise ModelCardMismatch(
                f"{where}: feature set v{self.feature_set_version}, engine has v{FEATURE_SET_VERSION}"
            )
        if tuple(self.feature_names) != FEATURE_NAMES:
            # The lists may differ in length: name the first differing feature, else the counts below.
            for i, (a, b) in enumerate(zip(self.feature_names, FEATURE_NAMES, strict=False)):
                if a != b:
                    raise ModelCardMismatch(f"{where}: feature {i} is {a!r}, engine has {b!r}")
            raise ModelCardMismatch(f"{where}: {len(self.feature_names)} features, engine has {len(FEATURE_NAMES)}")
