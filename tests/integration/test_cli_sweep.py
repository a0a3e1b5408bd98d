"""`scalper sweep` on generated tick files: the example sweep file, the table, the report, the serial notice."""

import shutil
from pathlib import Path

import polars as pl
import typer
from builders import random_walk_ticks
from typer.testing import CliRunner

from scalper.backtest import sweep
from scalper.engine.sweep_cli import sweep_cmd
from scalper.ingest import tickfile

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "sweep_example.toml"

# The command as engine/cli.py registers it (`app.command("sweep")(sweep_cmd)`); the callback keeps
# `sweep` a subcommand, as in the real application.
app = typer.Typer()
app.command("sweep")(sweep_cmd)


@app.callback()
def _root() -> None:
    """scalper"""


def test_sweep_command_runs_the_example_file_and_writes_table_and_report(tmp_path, monkeypatch):
    # The example's layout: configs/sweep_example.toml beside configs/default.toml, sessions in data/.
    configs, data = tmp_path / "configs", tmp_path / "data"
    configs.mkdir()
    data.mkdir()
    example = EXAMPLE.read_text()
    (configs / "sweep_example.toml").write_text(example)
    # Small and quick: one horizon, few trees, few resamples.
    (configs / "default.toml").write_text(
        "[labels]\nhorizons_s = [5.0]\nsplit = [0.5, 0.2, 0.3]\n[train]\nn_estimators = 8\n"
    )
    for name, seed in (("synth_a", 8), ("synth_b", 9)):
        tickfile.write(data / f"{name}.parquet", random_walk_ticks(seed, 10_000))
    monkeypatch.setattr(sweep, "ray_available", lambda: False)
    out = tmp_path / "report"
    res = runner.invoke(app, ["sweep", "-c", str(configs / "sweep_example.toml"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Ray is not installed" in res.output and "serially" in res.output
    table = pl.read_parquet(out / "sweep.parquet")
    assert table.height == 2 * 2 * 2  # flat shares x files x folds
    assert sorted(set(table["labels.flat_share"].to_list())) == [0.2, 0.34]
    assert table["error"].null_count() == table.height
    assert table["h5s.onnx_sha256"].null_count() == 0
    for name in ("summary.md", "skill.png", "auc.png"):
        assert (out / name).stat().st_size > 0
    assert "labels.flat_share=0.34" in (out / "summary.md").read_text()


def test_sweep_command_refuses_a_bad_file_naming_the_key(tmp_path):
    bad = tmp_path / "s.toml"
    shutil.copy(EXAMPLE, bad)
    bad.write_text(bad.read_text().replace('"labels.flat_share"', '"labels.flatshare"'))
    res = runner.invoke(app, ["sweep", "-c", str(bad), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "flatshare" in res.output and "Traceback" not in res.output


def test_sweep_command_runs_an_optuna_search_serially(tmp_path):
    ticks = tmp_path / "a.parquet"
    tickfile.write(ticks, random_walk_ticks(8, 10_000))
    path = tmp_path / "s.toml"
    path.write_text(
        f'files = ["{ticks}"]\nfolds = 1\nreplicates = 20\nsearch = "optuna"\ntrials = 2\n'
        '[grid]\n"labels.horizons_s" = [[5.0]]\n"train.n_estimators" = [5]\n'
        '[space]\n"labels.dead_zone_ticks" = {low = 0.0, high = 1.0}\n'
    )
    out = tmp_path / "o"
    res = runner.invoke(app, ["sweep", "-c", str(path), "-o", str(out), "--serial"])
    assert res.exit_code == 0, res.output
    assert "2 tasks (2 Optuna trials) serially" in res.output
    table = pl.read_parquet(out / "sweep.parquet")
    assert table["config_id"].to_list() == [0, 1] and table["h5s.log_loss"].null_count() == 0
