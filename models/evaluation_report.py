"""The evaluation report folder: ``evaluation.json``, ``evaluation.md`` and ``reliability_<H>.png`` per horizon."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from scalper.models.evaluate import ModelEvaluation
from scalper.models.evaluation import HorizonEvaluation, Interval


def _num(v: float | None, fmt: str = "{:.4f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _ci(i: Interval) -> str:
    return "[n/a]" if i.low is None or i.high is None else f"[{i.low:.4f}, {i.high:.4f}]"


def table_rows(ev: dict[str, HorizonEvaluation]) -> list[tuple[str, list[str]]]:
    """Return (metric, cell per horizon): each metric beside the prior's, intervals beside what they qualify."""
    e = list(ev.values())
    return [
        ("rows scored / up-or-down rows", [f"{x.rows:,} / {x.moved_rows:,}" for x in e]),
        ("log-loss (nats): model / prior", [f"{x.log_loss:.4f} / {x.prior_log_loss:.4f}" for x in e]),
        ("log-loss skill [95 % CI]", [f"{x.log_loss_skill:+.4f} {_ci(x.log_loss_skill_interval)}" for x in e]),
        ("Brier score: model / prior", [f"{x.brier:.4f} / {x.prior_brier:.4f}" for x in e]),
        ("Brier skill [95 % CI]", [f"{x.brier_skill:+.4f} {_ci(x.brier_skill_interval)}" for x in e]),
        (
            "AUC up vs down [95 % CI] (prior 0.5)",
            [f"{_num(x.auc_up_down)} {_ci(x.auc_up_down_interval)}" for x in e],
        ),
        (
            "balanced accuracy: model / prior",
            [f"{_num(x.balanced_accuracy)} / {_num(x.prior_balanced_accuracy)}" for x in e],
        ),
        ("ECE class-wise [95 % bootstrap range]", [f"{x.ece:.4f} {_ci(x.ece_interval)}" for x in e]),
        ("ECE class-wise of the prior", [f"{x.prior_ece:.4f}" for x in e]),
        ("ECE per class", [" / ".join(f"{v:.4f}" for v in x.ece_per_class) for x in e]),
        ("IC (Spearman, p_up - p_down vs move; prior 0)", [_num(x.information_coefficient) for x in e]),
        ("rule: trades / hit rate", [f"{x.rule_trades:,} / {_num(x.rule_hit_rate, '{:.3f}')}" for x in e]),
        (
            "rule: mean / total net bps (prior: no trade, 0)",
            [f"{_num(x.rule_mean_bps, '{:+.2f}')} / {x.rule_total_bps:+.1f}" for x in e],
        ),
        ("verdict", [f"**{x.verdict}**" for x in e]),
    ]


def _markdown_table(ev: dict[str, HorizonEvaluation]) -> list[str]:
    head = ["| metric | " + " | ".join(ev) + " |", "| --- |" + " ---: |" * len(ev)]
    return head + [f"| {name} | " + " | ".join(cells) + " |" for name, cells in table_rows(ev)]


def _flags(ev: dict[str, HorizonEvaluation]) -> list[str]:
    out = []
    for h, x in ev.items():
        if x.small_sample:
            out.append(f"- {h}: small sample: {', '.join(x.small_sample)}; read its intervals with care")
        by_reason: dict[str, list[str]] = {}
        for metric, why in x.undefined.items():
            by_reason.setdefault(why, []).append(metric)
        out += [f"- {h}: {', '.join(metrics)} undefined: {why}" for why, metrics in by_reason.items()]
    return out


def verdict_lines(ev: ModelEvaluation) -> list[str]:
    """Return one plain line per horizon: the verdict on its log-loss skill interval."""
    return [
        f"{h}: {x.verdict} (log-loss skill {x.log_loss_skill:+.4f} {_ci(x.log_loss_skill_interval)})"
        for h, x in ev.horizons.items()
    ]


def markdown(ev: ModelEvaluation) -> str:
    """Return the report as markdown: what was scored, the verdicts, the metric table per horizon (and file)."""
    s = ev.settings
    lines = [
        f"# Evaluation of {ev.model_dir}",
        "",
        "Out of sample only: a file the models were trained on is scored from the card's test span on.",
        "",
        "| file | scored span | from (ns) | to (ns) |",
        "| --- | --- | ---: | ---: |",
        *(f"| {g.file} | {g.span} | {g.from_ns} | {g.to_ns} |" for g in ev.segments),
        "",
        "## Verdict",
        "",
        *(f"- {line}" for line in verdict_lines(ev)),
        "",
        "## Metrics per horizon" + (" (all files pooled)" if ev.per_segment else ""),
        "",
        *_markdown_table(ev.horizons),
        "",
        *_flags(ev.horizons),
        "",
    ]
    for file, per in ev.per_segment.items():
        body = [*_markdown_table(per), "", *_flags(per)] if per else ["No row scored: the models trained on all of it."]
        lines += [f"## {file}", "", *body, ""]
    if ev.folds:
        lines += [
            "## Walk-forward folds (from the cards)",
            "",
            "Each fold's own model on its own test span, as training recorded it: point estimates; the"
            " shipped model is the last fold's, rescored above with intervals.",
            "",
            "| horizon | fold | test from (ns) | rows | log-loss: model / prior | skill"
            " | balanced accuracy: model / prior | trees |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for h, folds in ev.folds.items():
            lines += [
                f"| {h} | {f.index} | {f.test_from_ns} | {f.rows:,} | {f.log_loss:.4f} / {f.prior_log_loss:.4f}"
                f" | {f.log_loss_skill:+.4f} | {f.balanced_accuracy:.4f} / {f.prior_balanced_accuracy:.4f}"
                f" | {f.n_trees} |"
                for f in folds
            ]
        lines.append("")
    lines += regime_lines(ev)
    lines += [
        "## How to read it",
        "",
        "- The prior predicts the training span's class frequencies on every row; skill = 1 - model / prior"
        " (0: no better than the prior).",
        f"- Intervals: percentile, {s['confidence']:.0%}, {s['bootstrap_replicates']} resamples by {s['bootstrap']},"
        f" seed {s['seed']}. The verdict says no skill when the log-loss skill interval contains zero.",
        f"- ECE: {s['ece']}; the reliability diagram of each horizon is reliability_<H>.png. Its range is the"
        " percentile range of the resamples' ECE, with the full sample's bins: resampling adds noise to every"
        " bin's |gap|, so the range runs high and can lie above the estimate; read its upper end as a bound.",
        f"- Rule: enter the likelier of up and down when its probability exceeds {s['rule_threshold']:g}, at the"
        f" touch, exit at the horizon at the touch, taker fee {s['taker_fee_bps']:g} bps on both legs, one position"
        " at a time; PnL in bps of the entry price.",
        "",
        "## Models",
        "",
        "| file | horizon (s) | trained on | onnx sha256 | card sha256 |",
        "| --- | ---: | --- | --- | --- |",
        *(
            f"| {m['model_file']} | {m['horizon_s']:g} | {m['trained_on']} | {m['onnx_sha256']} | {m['card_sha256']} |"
            for m in ev.models
        ),
        "",
    ]
    return "\n".join(lines)


def _pair(m: dict, key: str) -> str:
    low, high = m[f"{key}_interval"]
    ci = "[n/a]" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"
    return f"{_num(m[key])} {ci}"


def regime_lines(ev: ModelEvaluation) -> list[str]:
    """Return the markdown section "Single vs regime-gated" (empty if no card compares them): per horizon and
    fold, the pooled single model and the regime-gated one on the fold's test span, as training scored them."""
    rows = [(h, f.index, f.regime_comparison) for h, folds in ev.folds.items() for f in folds if f.regime_comparison]
    if not rows:
        return []
    lines = [
        "## Single vs regime-gated (from the cards)",
        "",
        "Each fold's pooled single model and its regime-gated model (one LightGBM per volatility regime of the"
        " training span, the pooled one where a regime had too few rows), each calibrated on the validation"
        " span, on the same test span; intervals: moving-block bootstrap, 95 %.",
        "",
        "| horizon | fold | rows | log-loss skill: single | log-loss skill: gated | AUC up vs down: single"
        " | AUC up vs down: gated | regime feature: thresholds (own models) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for h, index, c in rows:
        gate = c["gate"]
        own = sum(r["own_model"] for r in gate["regimes"])
        cuts = ", ".join(f"{t:.4g}" for t in gate["thresholds"])
        lines.append(
            f"| {h} | {index} | {c['gated']['rows']:,} | {_pair(c['single'], 'log_loss_skill')}"
            f" | {_pair(c['gated'], 'log_loss_skill')} | {_pair(c['single'], 'auc_up_down')}"
            f" | {_pair(c['gated'], 'auc_up_down')} | {gate['feature']}: {cuts} ({own}/{len(gate['regimes'])}) |"
        )
    return [*lines, ""]


def plot_reliability(path: Path, x: HorizonEvaluation, classes: list[str], title: str) -> None:
    """Draw each class's reliability curve (observed frequency against mean predicted probability)."""
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfectly calibrated")
    for name, c in zip(classes, x.reliability, strict=True):
        ax.plot(c.predicted, c.observed, marker="o", lw=1.2, label=name)
    top = max([1e-3, *(float(max(c.predicted.max(), c.observed.max())) for c in x.reliability if c.count.size)])
    lim = min(1.0, 1.1 * top)
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_xlabel(f"mean predicted probability ({x.ece_bins} equal-mass bins)")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"{title}\nECE class-wise {x.ece:.4f} (prior {x.prior_ece:.4f}), {x.rows:,} rows")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_evaluation_report(out_dir: str | Path, ev: ModelEvaluation, classes: list[str]) -> list[Path]:
    """Write ``evaluation.json`` (strict JSON), ``evaluation.md`` and ``reliability_<H>.png``; return the paths.

    ``classes`` names the probability columns (the cards' ``classes``) for the diagram's legend.

    Raises
    ------
    ValueError
        If a metric is NaN or infinite (a bug: undefined metrics are null with their reason).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "model_dir": ev.model_dir,
        "models": ev.models,
        "segments": [vars(g) for g in ev.segments],
        "settings": ev.settings,
        "classes": classes,
        "verdicts": {h: x.verdict for h, x in ev.horizons.items()},
        "horizons": {h: x.to_json() for h, x in ev.horizons.items()},
        "per_segment": {f: {h: x.to_json() for h, x in per.items()} for f, per in ev.per_segment.items()},
        "folds": {h: [vars(f) for f in folds] for h, folds in ev.folds.items()},
    }
    paths = [out / "evaluation.json", out / "evaluation.md"]
    paths[0].write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    paths[1].write_text(markdown(ev))
    for h, x in ev.horizons.items():
        png = out / f"reliability_{h}.png"
        plot_reliability(png, x, classes, f"{Path(ev.model_dir).name}, {h}")
        paths.append(png)
    return paths
