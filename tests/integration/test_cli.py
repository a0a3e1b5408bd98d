"""The scalper command line, end to end through typer."""

import json

import pytest
from typer.testing import CliRunner

from scalper.engine.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [[], ["data"], ["data", "import"], ["data", "import", "lobster"], ["data", "inspect"], ["data", "generate"], ["train"], ["backtest"], ["demo"]],
)
def test_every_command_has_help(args):
    res = runner.invoke(app, [*args, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_demo_runs_generate_train_backtest_and_labels_the_report_synthetic(tmp_path):
    res = runner.invoke(app, ["demo", "-o", str(tmp_path), "--duration-s", "1200", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "models").iterdir()} == {
        f"h{h}s.{ext}" for h in (5, 10, 30) for ext in ("onnx", "card.json")
    }
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["synthetic"] is True
    assert metrics["instrument"]["source"] == "synthetic:seed=3"
    assert metrics["ends_flat"]
    assert metrics["final_equity"] == pytest.approx(1_000_000.0 + metrics["net_pnl"], abs=1e-6)
    card = json.loads((tmp_path / "models" / "h5s.card.json").read_text())
    assert card["synthetic"] is True
    assert "SYNTHETIC" in res.output


def test_bad_config_key_exits_2_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[risk]\nmax_positon = 3\n")
    res = runner.invoke(app, ["train", "--ticks", str(tmp_path / "x.parquet"), "-o", str(tmp_path / "m"), "-c", str(cfg)])
    assert res.exit_code == 2
    assert "risk.max_positon" in res.output


def test_inspect_of_a_non_tick_file_exits_2_naming_it(tmp_path):
    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("not parquet")
    res = runner.invoke(app, ["data", "inspect", str(bogus)])
    assert res.exit_code == 2
    assert "bogus.parquet" in res.output
