"""``scalper evaluate`` end to end on models trained in the test: the report's files, its values, its refusals."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from builders import ETH_LIKE, random_walk_ticks
from typer.testing import CliRunner

from scalper.engine.cli import app
from scalper.ingest import tickfile
from scalper.models.card import ModelCard
from scalper.models.evaluation import NO_SKILL, SKILL, WORSE

runner = CliRunner()
HORIZONS = ("5s", "10s", "30s")
DAY_NS = 86_400_000_000_000


def _strict(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _finite_numbers(obj) -> list[float]:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    values = obj.values() if isinstance(obj, dict) else obj
    return [x for v in values for x in _finite_numbers(v)]


def _evaluate(trained: Path, out: Path, *ticks: str, extra: tuple[str, ...] = ()):
    cfg = out.parent / "c.toml"
    cfg.write_text("[labels]\ndead_zone_ticks = 0.0\n")
    args = ["evaluate", str(trained / "models"), *(str(trained / t) for t in ticks), "-o", str(out), "-c", str(cfg)]
    return runner.invoke(app, [*args, "--replicates", "200", *extra], env={"COLUMNS": "200"})


def test_evaluate_writes_the_report_on_the_test_span_of_the_training_file(trained, tmp_path):
    out = tmp_path / "eval"
    res = _evaluate(trained, out, "eth.parquet")
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {
        "evaluation.json",
        "evaluation.md",
        *(f"reliability_{h}.png" for h in HORIZONS),
    }
    doc = _strict((out / "evaluation.json").read_text())
    assert all(math.isfinite(v) for v in _finite_numbers(doc))
    card = ModelCard.load(trained / "models" / "h5s.card.json")
    (seg,) = doc["segments"]
    assert seg["span"] == "test span of the card (trained on this file)"
    assert seg["from_ns"] >= card.test_span_ns[0]
    assert set(doc["horizons"]) == set(HORIZONS) and doc["per_segment"] == {}
    for h, ev in doc["horizons"].items():
        test = ModelCard.load(trained / "models" / f"h{h[:-1]}s.card.json").metrics["test"]
        # The card's test rows are exactly the rows scored, with the same log-losses.
        assert ev["rows"] == test.rows
        assert ev["log_loss"] == pytest.approx(test.log_loss, abs=1e-6)
        assert ev["prior_log_loss"] == pytest.approx(test.baseline_log_loss, abs=1e-9)
        assert ev["log_loss_skill"] == pytest.approx(1 - test.log_loss / test.baseline_log_loss, abs=1e-5)
        assert 0.0 <= ev["auc_up_down"] <= 1.0
        lo, hi = ev["log_loss_skill_interval"]["low"], ev["log_loss_skill_interval"]["high"]
        assert lo <= ev["log_loss_skill"] <= hi
        assert ev["bootstrap_replicates"] == 200 and ev["bootstrap_block_rows"] == 20 * int(h[:-1]) // 5
        assert ev["verdict"] in (NO_SKILL, SKILL, WORSE) and ev["verdict"] == doc["verdicts"][h]
        assert ev["verdict"] == (SKILL if lo > 0 else WORSE if hi < 0 else NO_SKILL)
        assert len(ev["reliability"]) == 3 and sum(ev["reliability"][0]["count"]) == ev["rows"]
        assert f"{h}: {ev['verdict']}" in res.output
        assert (out / f"reliability_{h}.png").stat().st_size > 10_000
    md = (out / "evaluation.md").read_text()
    assert "| log-loss skill [95 % CI] |" in md and "h5s.onnx" in md


def _walk(seed: int, n: int, shift_ns: int = 0):
    walk = random_walk_ticks(seed, n)
    return dataclasses.replace(
        walk, instrument=ETH_LIKE, ts_event=walk.ts_event + shift_ns, ts_recv=walk.ts_recv + shift_ns
    )


def test_evaluate_scores_another_file_whole_and_each_file_apart(trained, tmp_path):
    other = tmp_path / "other.parquet"
    tickfile.write(other, _walk(5, 8_000, shift_ns=DAY_NS))  # the next day: data the models never saw
    out = tmp_path / "eval"
    res = _evaluate(trained, out, "eth.parquet", str(other), extra=("--threshold", "0.34"))
    assert res.exit_code == 0, res.output
    doc = _strict((out / "evaluation.json").read_text())
    spans = {s["file"]: s["span"] for s in doc["segments"]}
    assert spans == {
        "eth.parquet": "test span of the card (trained on this file)",
        "other.parquet": "whole file (not the training file)",
    }
    assert set(doc["per_segment"]) == {"eth.parquet", "other.parquet"}
    for h in HORIZONS:
        parts = [doc["per_segment"][f][h]["rows"] for f in ("eth.parquet", "other.parquet")]
        assert doc["horizons"][h]["rows"] == sum(parts)
        ev = doc["horizons"][h]
        assert ev["rule_threshold"] == 0.34
        if ev["rule_trades"]:
            assert np.isfinite(ev["rule_mean_bps"]) and 0.0 <= ev["rule_hit_rate"] <= 1.0


def test_evaluate_refuses_ticks_of_another_instrument(trained, tmp_path):
    res = _evaluate(trained, tmp_path / "eval", "btc.parquet")
    assert res.exit_code == 2
    assert "trained on BINANCE_USDM ETHUSDT, this engine trades BINANCE_USDM BTCUSDT" in res.output
    assert not (tmp_path / "eval").exists()


def test_train_writes_the_evaluation_of_first_passage_models_on_their_test_span(trained, tmp_path):
    cfg = tmp_path / "fp.toml"
    # The walk's spread is 3 ticks (3 bps): a stop inside it would always come first.
    cfg.write_text('[labels]\nkind = "first_passage"\n\n[risk]\ntake_profit_bps = 1.0\nstop_loss_bps = 8.0\n')
    models = tmp_path / "models"
    res = runner.invoke(
        app, ["train", "-t", str(trained / "eth.parquet"), "-o", str(models), "-c", str(cfg)], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 0, res.output
    doc = _strict((models / "evaluation" / "evaluation.json").read_text())
    for h, ev in doc["horizons"].items():
        card = ModelCard.load(models / f"h{h[:-1]}s.card.json")
        assert card.labels.kind == "first_passage"
        # Relabelled from the card's LabelSpec: the very rows, classes and log-loss training reported.
        assert ev["rows"] == card.metrics["test"].rows
        assert ev["class_counts"] == card.metrics["test"].class_counts
        assert ev["log_loss"] == pytest.approx(card.metrics["test"].log_loss, abs=1e-6)
        assert ev["rule_threshold"] == pytest.approx(1 / (1 + 1 / 8))  # where Kelly bets: b = take-profit / stop
    assert "verdict" in res.output or "over the prior" in res.output


def test_the_report_lists_each_walk_forward_fold_of_the_cards(trained, tmp_path):
    cfg = tmp_path / "folds.toml"
    cfg.write_text("[labels]\ndead_zone_ticks = 0.0\n\n[train]\nfolds = 3\n")
    models = tmp_path / "models"
    res = runner.invoke(
        app, ["train", "-t", str(trained / "eth.parquet"), "-o", str(models), "-c", str(cfg)], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 0, res.output
    doc = _strict((models / "evaluation" / "evaluation.json").read_text())
    assert set(doc["folds"]) == set(HORIZONS)
    for h, folds in doc["folds"].items():
        card = ModelCard.load(models / f"h{h[:-1]}s.card.json")
        assert [f["index"] for f in folds] == [0, 1, 2]
        assert [f["rows"] for f in folds] == [f.test.rows for f in card.folds]
        for f in folds:
            assert f["log_loss_skill"] == pytest.approx(1 - f["log_loss"] / f["prior_log_loss"])
        # The shipped model is the last fold's: rescored on its test span, it has that fold's rows.
        assert doc["horizons"][h]["rows"] == folds[-1]["rows"]
    assert "## Walk-forward folds (from the cards)" in (models / "evaluation" / "evaluation.md").read_text()


def test_another_file_over_the_training_span_counts_as_seen(trained, tmp_path):
    # Another walk of the same instrument at the same times: the training span's market through another file.
    same_time = tmp_path / "same_time.parquet"
    tickfile.write(same_time, _walk(5, 20_000))
    out = tmp_path / "eval"
    res = _evaluate(trained, out, str(same_time))
    assert res.exit_code == 0, res.output
    doc = _strict((out / "evaluation.json").read_text())
    (seg,) = doc["segments"]
    assert seg["span"] == "test span of the card (the file overlaps the training span in time)"
    assert seg["from_ns"] >= ModelCard.load(trained / "models" / "h5s.card.json").test_span_ns[0]


def test_evaluate_of_a_two_session_model_scores_only_the_last_sessions_test_span(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    tickfile.write(first, _walk(8, 20_000))
    tickfile.write(second, _walk(9, 20_000, shift_ns=DAY_NS))
    cfg = tmp_path / "c.toml"
    cfg.write_text("[labels]\ndead_zone_ticks = 0.0\nhorizons_s = [5.0]\n\n[train]\nfolds = 2\n")
    models = tmp_path / "m"
    res = runner.invoke(app, ["train", "-t", str(first), "-t", str(second), "-o", str(models), "-c", str(cfg)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "eval"
    res = runner.invoke(app, ["evaluate", str(models), str(first), str(second), "-o", str(out), "-c", str(cfg)])
    assert res.exit_code == 0, res.output
    doc = _strict((out / "evaluation.json").read_text())
    assert [s["span"] for s in doc["segments"]] == ["test span of the card (trained on this file)"] * 2
    card = ModelCard.load(models / "h5s.card.json")
    # The first session is all training data: nothing of it is scored.
    assert doc["horizons"]["5s"]["rows"] == card.metrics["test"].rows
    assert set(doc["per_segment"]) == {"a.parquet", "b.parquet"} and doc["per_segment"]["a.parquet"] == {}
    assert "## a.parquet\n\nNo row scored: the models trained on all of it." in (out / "evaluation.md").read_text()
