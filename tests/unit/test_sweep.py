"""Sweeps: the sweep file, the task grid, one fold's own model, and a serial run = a Ray run."""

import dataclasses

import numpy as np
import polars as pl
import pytest
from builders import random_walk_ticks

from scalper.backtest import sweep
from scalper.backtest.sweep_report import write_sweep_report
from scalper.features.config import FeaturesConfig
from scalper.ingest import tickfile
from scalper.models.config import LabelsConfig, TrainConfig
from scalper.models.train import train_models

DAY = 86_400 * 10**9


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep_ticks")
    a, b = d / "a.parquet", d / "b.parquet"
    tickfile.write(a, random_walk_ticks(8, 12_000))
    later = random_walk_ticks(9, 12_000)
    tickfile.write(b, dataclasses.replace(later, ts_event=later.ts_event + DAY, ts_recv=later.ts_recv + DAY))
    return a, b


def _sweep_file(tmp_path, two_files, grid: str, extra: str = "") -> object:
    path = tmp_path / "sweep.toml"
    (tmp_path / "base.toml").write_text(
        "[labels]\nhorizons_s = [5.0]\nsplit = [0.5, 0.2, 0.3]\n[train]\nn_estimators = 8\nearly_stopping_rounds = 0\n"
    )
    a, b = two_files
    path.write_text(
        f'base = "base.toml"\nfiles = ["{a}", ["{a}", "{b}"]]\nfolds = 2\nseed = 3\nreplicates = 30\n{extra}'
        f"[grid]\n{grid}"
    )
    return path


def test_grid_points_are_the_product_last_key_fastest():
    assert sweep.grid_points({"a.x": [1, 2], "b.y": ["p", "q"]}) == [
        {"a.x": 1, "b.y": "p"},
        {"a.x": 1, "b.y": "q"},
        {"a.x": 2, "b.y": "p"},
        {"a.x": 2, "b.y": "q"},
    ]
    assert sweep.grid_points({}) == [{}]


def test_sweep_file_expands_to_configurations_file_sets_and_folds(tmp_path, two_files):
    path = _sweep_file(tmp_path, two_files, '"labels.dead_zone_ticks" = [0.0, 1.0]\n"train.num_leaves" = [4, 8, 16]\n')
    spec, configs = sweep.load_sweep(path)
    assert len(configs) == 6 and spec.file_sets()[1] == tuple(str(f) for f in two_files)
    assert configs[5]["labels"]["dead_zone_ticks"] == 1.0 and configs[5]["train"]["num_leaves"] == 16
    assert all(c["train"]["seed"] == 3 and c["train"]["folds"] == 2 for c in configs)
    assert configs[0]["labels"]["horizons_s"] == [5.0]  # from the base config
    tasks = sweep.sweep_tasks(spec, configs)
    assert len(tasks) == 6 * 2 * 2
    assert [(t.config_id, t.file_set, t.fold) for t in tasks[:4]] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ('"labels.nope" = [1]\n', "has no key 'nope'"),
        ('"nosection.x" = [1]\n', "not a 'section.key'"),
        ('"labels.flat_share" = []\n', "at least one value"),
        ('"labels.flat_share" = [0.2, 1.5]\n', "flat_share"),
    ],
)
def test_bad_sweep_file_names_the_key(tmp_path, two_files, grid, message):
    with pytest.raises(sweep.SweepError, match=message):
        sweep.load_sweep(_sweep_file(tmp_path, two_files, grid))


def test_missing_tick_file_is_named(tmp_path, two_files):
    path = tmp_path / "s.toml"
    path.write_text('files = ["absent.parquet"]\n')
    with pytest.raises(sweep.SweepError, match="absent.parquet"):
        sweep.load_sweep(path)


def test_one_fold_alone_is_the_full_runs_fold(tmp_path, two_files):
    labels = LabelsConfig(horizons_s=[5.0], dead_zone_ticks=0.0, split=(0.5, 0.2, 0.3))
    cfg = TrainConfig(n_estimators=8, folds=3)
    full = train_models(two_files[0], tmp_path / "full", FeaturesConfig(), labels, cfg)[0].card
    one = train_models(two_files[0], tmp_path / "one", FeaturesConfig(), labels, cfg, fold=1)[0].card
    assert one.test_span_ns == full.folds[1].test_span_ns and one.train_span_ns == full.folds[1].train_span_ns
    assert [f.index for f in one.folds] == [1] and one.folds[0].test == full.folds[1].test
    with pytest.raises(ValueError, match="fold 3 is not one of the 3"):
        train_models(two_files[0], tmp_path / "bad", FeaturesConfig(), labels, cfg, fold=3)


def test_exported_graph_bytes_do_not_depend_on_the_converters_naming_or_set_order():
    # onnxmltools draws a UUID graph name and lists opset imports in string-hash order (per process).
    import onnx

    from scalper.models.train import _named_graph

    def graph(name, domains):
        g = onnx.helper.make_graph([], name, [], [])
        return onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid(d, 1) for d in domains])

    a = graph("3f2a", ["ai.onnx.ml", ""]).SerializeToString()
    b = graph("9c1e", ["", "ai.onnx.ml"]).SerializeToString()
    assert a != b and _named_graph(a, "h5s") == _named_graph(b, "h5s")


def _tiny(tmp_path, two_files):
    grid = '"labels.dead_zone_ticks" = [0.0, 2.0]\n'
    spec, configs = sweep.load_sweep(_sweep_file(tmp_path, two_files, grid, extra="backtest = true\n"))
    return sweep.sweep_tasks(spec, configs)


@pytest.fixture(scope="module")
def serial_table(tmp_path_factory, two_files):
    tasks = _tiny(tmp_path_factory.mktemp("serial"), two_files)
    return sweep.run_sweep(tasks, "serial")


def test_serial_sweep_rows_hold_settings_metrics_and_hashes(serial_table, tmp_path):
    t = serial_table
    assert t.height == 2 * 2 * 2
    assert t["labels.dead_zone_ticks"].to_list() == [0.0] * 4 + [2.0] * 4
    assert t["fold"].to_list() == [0, 1] * 4 and t["files"][2].to_list() == ["a.parquet", "b.parquet"]
    assert t["error"].null_count() == t.height
    for col in ("h5s.log_loss", "h5s.log_loss_skill", "h5s.auc_up_down", "h5s.ece"):
        assert np.isfinite(t[col].to_numpy()).all(), col
    assert (t["h5s.log_loss_skill_low"] <= t["h5s.log_loss_skill_high"]).all()
    # The engine's replay of each test span: net = gross - fees, a round trip has an entry and an exit fill.
    assert np.allclose(t["bt.net_pnl"].to_numpy(), (t["bt.gross_pnl"] - t["bt.fees"]).to_numpy())
    assert (t["bt.fills"] >= 2 * t["bt.trades"]).all() and t["bt.trades"].sum() > 0
    assert t["h5s.onnx_sha256"].str.len_chars().to_list() == [64] * t.height
    # Each fold's test span lies after the previous one's; the second file set's last fold tests its second file.
    spans = t.filter(pl.col("config_id") == 0).select("h5s.test_from_ns", "h5s.test_to_ns").rows()
    assert spans[0][1] < spans[1][0] and spans[3][0] > spans[2][1] >= DAY
    path = sweep.write_table(t, tmp_path)
    assert pl.read_parquet(path).equals(t)
    written = write_sweep_report(t, tmp_path, title="tiny")
    assert [p.name for p in written] == ["summary.md", "skill.png", "auc.png"]
    text = (tmp_path / "summary.md").read_text()
    assert "labels.dead_zone_ticks=2.0" in text and "| 1 | 4 |" in text and "## Backtest of the test spans" in text


@pytest.mark.slow
def test_serial_sweep_equals_ray_sweep(serial_table, tmp_path, two_files):
    ray = pytest.importorskip("ray", reason="Ray is the optional extra 'distributed'")
    tasks = _tiny(tmp_path, two_files)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        seen = []
        table = sweep.run_sweep(tasks, "ray", on_row=seen.append)
    finally:
        ray.shutdown()
    assert len(seen) == len(tasks)
    drop = list(sweep.WALL_COLUMNS)
    assert table.drop(drop).equals(serial_table.drop(drop))


def test_a_configuration_that_cannot_train_leaves_an_error_row(tmp_path, two_files):
    # A dead zone wider than any 5 s move: every training label is flat, a class is missing.
    spec, configs = sweep.load_sweep(_sweep_file(tmp_path, two_files, '"labels.dead_zone_ticks" = [1000.0]\n'))
    row = sweep.run_task(sweep.sweep_tasks(spec, configs)[0])
    assert "lacks class" in row["error"] and "h5s.log_loss" not in row
    table = pl.from_dicts([row], infer_schema_length=None)
    write_sweep_report(table, tmp_path)
    assert "lacks class" in (tmp_path / "summary.md").read_text()
