"""``scalper sweep``: the walk-forward over a grid of settings across tick files, on Ray or serially.

``engine/cli.py`` registers :func:`sweep_cmd` as the ``sweep`` command; it sits in its own import
layer below the CLI module (pyproject.toml, the import-linter contract).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
err = Console(stderr=True, soft_wrap=True)


def sweep_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Sweep file (TOML; see configs/sweep_example.toml).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Report directory: sweep.parquet, summary.md, skill.png, auc.png.")
    ] = Path("reports/sweep"),
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster to join (e.g. 'auto' or 'ray://head:10001'; every node needs scalper installed);"
            " a local Ray on this machine by default.",
        ),
    ] = None,
    serial: Annotated[
        bool, typer.Option("--serial", help="Run the tasks one by one in this process, without Ray.")
    ] = False,
) -> None:
    """Train and score every configuration x file set x walk-forward fold of a sweep file.

    The configurations are the grid's product, or Optuna trials (search = "optuna"). Each task trains
    one fold's models and scores them on the fold's test span, with bootstrap intervals.

    Tasks run on Ray when it is installed (the 'distributed' extra), else one by one. Seeded: a serial
    and a Ray run write the same table apart from wall times.
    """
    from scalper.backtest.sweep import (
        SweepError,
        load_sweep,
        ray_available,
        run_sweep,
        sweep_tasks,
        write_table,
    )
    from scalper.backtest.sweep_report import write_sweep_report
    from scalper.backtest.sweep_search import search_sweep, trial_tasks

    try:
        spec, configs = load_sweep(config)
    except SweepError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from None
    tasks = sweep_tasks(spec, configs) if spec.search == "grid" else []  # an Optuna sweep's trials choose them
    total = len(tasks) if spec.search == "grid" else trial_tasks(spec)
    what = f"{total} tasks" + (f" ({spec.trials} Optuna trials)" if spec.search == "optuna" else "")
    executor = "serial"
    if serial:
        err.print(f"running {what} serially (--serial)")
    elif ray_available():
        executor = "ray"
        err.print(f"running {what} on Ray ({address or 'local'})")
    else:
        err.print(f"Ray is not installed (pip install -e '.[distributed]'): running {what} serially")
    bar = Progress(
        TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=False
    )
    task = bar.add_task("sweep", total=total)

    def advance(_row: dict) -> None:
        bar.advance(task)

    t0 = time.perf_counter()
    try:
        with bar:
            if spec.search == "grid":
                table = run_sweep(tasks, executor, address, on_row=advance)
            else:
                table = search_sweep(spec, executor, address, on_row=advance)
    except SweepError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from None
    wall = time.perf_counter() - t0
    path = write_table(table, out)
    write_sweep_report(table, out, title=f"sweep {config.name}")
    failed = table.filter(table["error"].is_not_null()).height if "error" in table.columns else 0
    console.print(
        f"{table.height} tasks ({executor}) in {wall:.1f} s"
        + (f", {failed} could not train" if failed else "")
        + f"; table {path}, report {out / 'summary.md'}"
    )
