"""Optuna sweeps: trials from the grid's choices and [space] ranges, seeded, serial = Ray."""

import dataclasses

import pytest
from builders import random_walk_ticks

from scalper.backtest import sweep
from scalper.backtest.sweep_search import objective_value, search_sweep, trial_tasks
from scalper.ingest import tickfile

DAY = 86_400 * 10**9


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep_search")
    a, b = d / "a.parquet", d / "b.parquet"
    tickfile.write(a, random_walk_ticks(8, 12_000))
    later = random_walk_ticks(9, 12_000)
    tickfile.write(b, dataclasses.replace(later, ts_event=later.ts_event + DAY, ts_recv=later.ts_recv + DAY))
    (d / "base.toml").write_text(
        "[labels]\nhorizons_s = [5.0]\nsplit = [0.5, 0.2, 0.3]\n[train]\nn_estimators = 8\nearly_stopping_rounds = 0\n"
    )
    path = d / "s.toml"
    path.write_text(
        f'base = "base.toml"\nfiles = ["{a}", "{b}"]\nfolds = 2\nseed = 3\nreplicates = 30\n'
        'search = "optuna"\ntrials = 3\nbatch = 2\n'
        '[grid]\n"labels.horizons_s" = [[5.0], [10.0]]\n'
        '[space]\n"labels.dead_zone_ticks" = {low = 0.0, high = 2.0}\n'
        '"train.num_leaves" = {low = 4, high = 32, log = true, integer = true}\n'
    )
    loaded, configs = sweep.load_sweep(path)
    assert configs == []  # trials choose the configurations
    return loaded


@pytest.fixture(scope="module")
def serial_table(spec):
    return search_sweep(spec, "serial")


def test_optuna_sweep_runs_every_trial_on_every_file_set_and_fold(spec, serial_table):
    t = serial_table
    assert trial_tasks(spec) == t.height == 3 * 2 * 2
    assert t["config_id"].to_list() == [0] * 4 + [1] * 4 + [2] * 4
    assert t["error"].null_count() == t.height
    for r in t.iter_rows(named=True):
        assert 0.0 <= r["labels.dead_zone_ticks"] <= 2.0 and 4 <= r["train.num_leaves"] <= 32
        assert r["labels.horizons_s"] in ([5.0], [10.0])
        h = f"h{r['labels.horizons_s'][0]:g}s"
        assert r[f"{h}.num_leaves"] == r["train.num_leaves"]  # the trial's value is the one trained


@pytest.mark.slow
def test_optuna_sweep_serial_equals_ray(spec, serial_table):
    ray = pytest.importorskip("ray", reason="Ray is the optional extra 'distributed'")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        table = search_sweep(spec, "ray")
    finally:
        ray.shutdown()
    drop = list(sweep.WALL_COLUMNS)
    differ = [c for c in serial_table.columns if c not in drop and not table[c].equals(serial_table[c])]
    assert table.columns == serial_table.columns and not differ, differ


def test_objective_is_the_metric_averaged_over_horizons_and_rows():
    rows = [{"h5s.auc_up_down": 0.6, "h10s.auc_up_down": None, "bt.x": 1.0}, {"h10s.auc_up_down": 0.7}]
    assert objective_value(rows, "auc_up_down") == pytest.approx(0.65)
    assert objective_value([{"h5s.auc_up_down": None}], "auc_up_down") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[space]\n"train.num_leaves" = {low = 4, high = 32}\n', "search = 'optuna' only"),
        ('search = "optuna"\nobjective = "verdict"\n', "objective must be one of"),
        ('search = "optuna"\n[space]\n"train.num_leaves" = {low = 32, high = 4}\n', "need low < high"),
    ],
)
def test_bad_search_settings_are_named(tmp_path, text, message):
    f = tmp_path / "t.parquet"
    f.write_bytes(b"")
    path = tmp_path / "s.toml"
    path.write_text(f'files = ["{f}"]\n{text}')
    with pytest.raises(sweep.SweepError, match=message):
        sweep.load_sweep(path)
