"""The scalper command line, end to end through typer."""

import json

import pytest
from typer.testing import CliRunner

from scalper.engine.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["data"],
        ["data", "import"],
        ["data", "import", "lobster"],
        ["data", "inspect"],
        ["data", "generate"],
        ["train"],
        ["evaluate"],
        ["backtest"],
        ["demo"],
    ],
)
def test_every_command_has_help(args):
    res = runner.invoke(app, [*args, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_demo_runs_generate_train_backtest_and_labels_the_report_synthetic(tmp_path):
    res = runner.invoke(app, ["demo", "-o", str(tmp_path), "--duration-s", "1200", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "models").iterdir() if p.is_file()} == {
        f"h{h}s.{ext}" for h in (5, 10, 30) for ext in ("onnx", "card.json")
    }
    assert (tmp_path / "models" / "evaluation" / "evaluation.json").is_file()  # train writes its evaluation
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["synthetic"] is True
    assert metrics["instrument"]["source"] == "synthetic:seed=3"
    assert metrics["ends_flat"]
    assert metrics["final_equity"] == pytest.approx(1_000_000.0 + metrics["net_pnl"], abs=1e-6)
    card = json.loads((tmp_path / "models" / "h5s.card.json").read_text())
    assert card["synthetic"] is True
    assert "SYNTHETIC" in res.output


def test_backtest_with_the_maker_config_posts_and_reports_the_mode(tmp_path):
    from pathlib import Path

    maker = Path(__file__).resolve().parents[2] / "configs" / "maker.toml"
    res = runner.invoke(app, ["demo", "-o", str(tmp_path), "--duration-s", "1200", "--seed", "3", "-c", str(maker)])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    st = metrics["strategy"]
    assert st["mode"] == "maker"
    assert st["entries_posted"] > 0
    assert st["maker_fills"] + st["taker_fills"] == metrics["fills"]
    assert "mode" in res.output and "maker" in res.output
    assert metrics["ends_flat"]
    ex = metrics["execution"]  # the execution report's figures, also in execution.md
    assert ex["maker_fills"] == st["maker_fills"] and ex["taker_fills"] == st["taker_fills"]
    assert ex["posted"] >= st["entries_posted"]
    assert ex["pnl"] == pytest.approx(metrics["net_pnl"], abs=1e-6)
    assert (tmp_path / "report" / "execution.md").is_file()


def test_bad_config_key_exits_2_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[risk]\nmax_positon = 3\n")
    res = runner.invoke(
        app, ["train", "--ticks", str(tmp_path / "x.parquet"), "-o", str(tmp_path / "m"), "-c", str(cfg)]
    )
    assert res.exit_code == 2
    assert "risk.max_positon" in res.output


def test_inspect_of_a_non_tick_file_exits_2_naming_it(tmp_path):
    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("not parquet")
    res = runner.invoke(app, ["data", "inspect", str(bogus)])
    assert res.exit_code == 2
    assert "bogus.parquet" in res.output


def test_import_lobster_summary_says_what_was_rounded_and_what_could_not_be_checked(tmp_path):
    msg = tmp_path / "TEST_2012-06-21_34200000_57600000_message_1.csv"
    ob = tmp_path / "TEST_2012-06-21_34200000_57600000_orderbook_1.csv"
    # Row 2: a float artifact (4 ps past 34200.5 s); row 3: a cancel below the one bid level shown.
    msg.write_text("34200,1,1,5,1000100,-1\n34200.500000000004,1,2,7,999900,1\n34201,2,3,1,999800,1\n")
    ob.write_text("1000100,5,999800,3\n1000100,5,999900,7\n1000100,5,999900,7\n")
    res = runner.invoke(
        app, ["data", "import", "lobster", str(msg), str(ob), "-o", str(tmp_path / "t.parquet")], env={"COLUMNS": "400"}
    )
    assert res.exit_code == 0, res.output
    assert "every book row follows from its message (1 beyond level 1: size change not visible)" in res.output
    assert "1 time(s) with more than 9 decimals rounded to the nanosecond (first at row 2)" in res.output
