"""The sweep's summary report: one markdown table per horizon and a plot per headline metric.

:func:`write_sweep_report` reads the table of ``backtest.sweep.run_sweep`` (one row per configuration x
file set x fold) and writes ``summary.md`` (per configuration and horizon: the mean log-loss skill over
the prior, up-vs-down AUC and expected calibration error over the folds, the lowest and highest fold
interval bound, and how many folds each verdict got) and ``skill.png`` / ``auc.png`` (each fold's
point estimate with its 95 % block-bootstrap interval, per configuration; matplotlib, Agg backend).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or a Ray worker
import matplotlib.pyplot as plt
import polars as pl

from scalper.models.evaluation import SKILL

_FIXED = ("config_id", "file_set", "files", "fold", "seed", "error", "wall_s")
PLOTS = (("log_loss_skill", "skill.png", "log-loss skill over the prior"), ("auc_up_down", "auc.png", "up-vs-down AUC"))


def horizons(table: pl.DataFrame) -> list[str]:
    """Return the horizon prefixes of the table's metric columns ("h5s", ...), shortest horizon first."""
    found = {m.group(1) for c in table.columns if (m := re.fullmatch(r"(h[0-9.e+-]+s)\.rows", c))}
    return sorted(found, key=lambda h: float(h[1:-1]))


def setting_columns(table: pl.DataFrame) -> list[str]:
    """Return the grid's dotted config keys (the columns that are neither fixed nor per horizon)."""
    return [c for c in table.columns if c not in _FIXED and not re.match(r"(h[0-9.e+-]+s|bt)\.", c)]


def _fmt(v: Any, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _settings(row: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys) or "(base config)"


def _summary(table: pl.DataFrame, h: str) -> pl.DataFrame:
    col = pl.col
    return (
        table.filter(col(f"{h}.rows").is_not_null())
        .group_by("config_id", maintain_order=True)
        .agg(
            col(f"{h}.rows").count().alias("folds"),
            col(f"{h}.log_loss_skill").mean().alias("skill"),
            col(f"{h}.log_loss_skill_low").min().alias("skill_low"),
            col(f"{h}.log_loss_skill_high").max().alias("skill_high"),
            col(f"{h}.auc_up_down").mean().alias("auc"),
            col(f"{h}.auc_up_down_low").min().alias("auc_low"),
            col(f"{h}.auc_up_down_high").max().alias("auc_high"),
            col(f"{h}.ece").mean().alias("ece"),
            (col(f"{h}.verdict") == SKILL).sum().alias("skill_folds"),
        )
        .sort("config_id")
    )


def _plot(table: pl.DataFrame, hs: list[str], metric: str, title: str, path: Path) -> None:
    fig, axes = plt.subplots(1, len(hs), figsize=(4.5 * len(hs), 3.5), squeeze=False)
    configs = table["config_id"].unique().sort().to_list()
    for ax, h in zip(axes[0], hs, strict=True):
        rows = table.filter(pl.col(f"{h}.{metric}").is_not_null())
        n = max(1, int(rows.height / max(1, len(configs))))
        for i, r in enumerate(rows.iter_rows(named=True)):
            x = configs.index(r["config_id"]) + (i % n - (n - 1) / 2) * 0.6 / n  # folds side by side
            v, lo, hi = r[f"{h}.{metric}"], r[f"{h}.{metric}_low"], r[f"{h}.{metric}_high"]
            err = [[v - lo], [hi - v]] if lo is not None and hi is not None else None
            ax.errorbar([x], [v], yerr=err, fmt="o", color=f"C{r['config_id'] % 10}", capsize=3)
        ax.axhline(0.0 if metric == "log_loss_skill" else 0.5, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(configs)), [str(c) for c in configs])
        ax.set_xlabel("configuration")
        ax.set_title(f"{h[1:-1]} s")
    axes[0][0].set_ylabel(title)
    fig.suptitle("each fold (file set x fold): the point estimate and its 95 % block-bootstrap interval", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_sweep_report(table: pl.DataFrame, out_dir: str | Path, title: str = "sweep") -> list[Path]:
    """Write ``summary.md``, ``skill.png`` and ``auc.png`` for a sweep table into ``out_dir``; return the paths.

    Rows with an ``error`` are listed, not scored. Log-loss skill = 1 - model / prior log-loss; the
    interval columns are each fold's 95 % block-bootstrap interval (``models.evaluation``), and the
    summary's interval is the lowest low and the highest high over the configuration's folds.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = setting_columns(table)
    hs = horizons(table)
    firsts = {r["config_id"]: r for r in table.unique("config_id", keep="first", maintain_order=True).to_dicts()}
    lines = [
        f"# {title}",
        "",
        f"{table.height} tasks (configuration x file set x fold), {len(firsts)} configurations,"
        f" seed {table['seed'][0]}; total task time {table['wall_s'].sum():.1f} s.",
        "",
        "Configurations:",
        "",
    ]
    lines += [f"- {cid}: {_settings(r, keys)}" for cid, r in firsts.items()]
    for h in hs:
        lines += [
            "",
            f"## {h[1:-1]} s",
            "",
            "| config | folds | log-loss skill | interval (min..max over folds) | AUC up/down | interval | ECE |"
            " folds with skill |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in _summary(table, h).iter_rows(named=True):
            lines.append(
                f"| {r['config_id']} | {r['folds']} | {_fmt(r['skill'])} | {_fmt(r['skill_low'])}.."
                f"{_fmt(r['skill_high'])} | {_fmt(r['auc'])} | {_fmt(r['auc_low'])}..{_fmt(r['auc_high'])} |"
                f" {_fmt(r['ece'])} | {r['skill_folds']} / {r['folds']} |"
            )
    if "bt.net_pnl" in table.columns:
        lines += [
            "",
            "## Backtest of the test spans",
            "",
            "| config | folds | trades | net PnL (sum, quote) | fees (sum) | mean net PnL per fold |",
            "|---|---|---|---|---|---|",
        ]
        bt = (
            table.filter(pl.col("bt.net_pnl").is_not_null())
            .group_by("config_id", maintain_order=True)
            .agg(
                pl.len().alias("folds"),
                pl.col("bt.trades").sum().alias("trades"),
                pl.col("bt.net_pnl").sum().alias("net"),
                pl.col("bt.fees").sum().alias("fees"),
                pl.col("bt.net_pnl").mean().alias("mean"),
            )
            .sort("config_id")
        )
        lines += [
            f"| {r['config_id']} | {r['folds']} | {r['trades']} | {_fmt(r['net'], 2)} | {_fmt(r['fees'], 2)} |"
            f" {_fmt(r['mean'], 2)} |"
            for r in bt.iter_rows(named=True)
        ]
    errors = table.filter(pl.col("error").is_not_null()) if "error" in table.columns else table.clear()
    if errors.height:
        lines += ["", "## Not trained", ""]
        lines += [
            f"- configuration {r['config_id']}, files {r['files']}, fold {r['fold']}: {r['error']}"
            for r in errors.iter_rows(named=True)
        ]
    paths = [out / "summary.md"]
    paths[0].write_text("\n".join(lines) + "\n")
    if hs:
        for metric, name, label in PLOTS:
            _plot(table, hs, metric, label, out / name)
            paths.append(out / name)
    return paths
