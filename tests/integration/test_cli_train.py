"""`scalper train` with several sessions, walk-forward folds and first-passage labels from the trade."""

import dataclasses
import json

from builders import random_walk_ticks
from typer.testing import CliRunner

from scalper.engine.cli import app
from scalper.ingest import tickfile

runner = CliRunner()


def test_train_takes_several_sessions_and_fills_first_passage_barriers_from_the_trade(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    tickfile.write(first, random_walk_ticks(8, 20_000))
    later = random_walk_ticks(9, 20_000)
    day = 86_400 * 10**9
    tickfile.write(second, dataclasses.replace(later, ts_event=later.ts_event + day, ts_recv=later.ts_recv + day))
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[labels]\nkind = "first_passage"\nhorizons_s = [30.0]\nsplit = [0.5, 0.1, 0.4]\n'
        '[train]\nn_estimators = 20\nfolds = 2\ncalibration = "temperature"\nsample_weights = "uniqueness"\n'
        "[risk]\ntake_profit_bps = 1.0\nstop_loss_bps = 8.0\n"
        "[exec]\nlatency_ms = 2.0\ntaker_fee_bps = 0.25\n"
    )
    out = tmp_path / "m"
    res = runner.invoke(app, ["train", "-t", str(first), "-t", str(second), "-o", str(out), "-c", str(cfg)])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "h30s.card.json").read_text())
    assert card["labels"] == {
        "kind": "first_passage",
        "dead_zone_ticks": None,
        "dead_zone_rule": None,
        "flat_share_target": None,
        "flat_share_train": None,
        "take_profit_bps": 1.0,
        "stop_loss_bps": 8.0,
        "latency_ns": 2_000_000,
        "round_trip_fee_bps": 0.5,
    }
    assert [f["file"] for f in card["data_files"]] == ["a.parquet", "b.parquet"]
    assert len(card["folds"]) == 2 and card["calibration"]["method"] == "temperature"
    assert "test span of b.parquet" in res.output
