"""How far each L2 queue model is from the exact (L3) queue on the LOBSTER sessions: the issue-14 table.

LOBSTER's message files carry order ids, so imported as market-by-order (schema v2) they give the exact
queue position of a resting order (:mod:`scalper.exec.l3queue`). This script posts one lot at the touch
on both sides every ``--interval-s`` seconds, keeps each post until it fills or ``--horizon-s`` passes,
and replays every post on its own under each L2 model of :mod:`scalper.exec.queue` and under the exact
queue, then compares them post by post.

Only posts whose truth is exact count: a post whose level left the file's depth-limited view while it
rested (``POST_LEFT_VIEW``; common in the level-1 files, where a better price pushes the touch out of
view) is excluded and counted.

Per model: ``fills`` (posts it fills within the horizon), ``truth_fills`` (the exact queue's),
``both``, ``model_only``, ``truth_only``, ``share_both`` (``both / truth_fills``), and over the posts filled
by both: ``exact`` (same ns), ``early`` / ``late`` (model before / after the truth) and the absolute
fill-time error in seconds (median, p90, and the median over the posts where the times differ).
``queue`` repeats ``early`` / ``late`` for the posts the truth fills through the queue (a trade at the
post's price, not a trade or best price through it): the part where the models differ in kind.

Usage: ``python -m scalper.benchmarks.queue_truth [--data-dir D] [--sessions GOOG_10,AAPL_1]
[--interval-s 10] [--horizon-s 60] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from scalper.exec.l3queue import (
    FILL_QUEUE,
    NO_FILL,
    POST_LEFT_VIEW,
    POST_NOT_PLACED,
    QUEUE_L3,
    order_arrivals,
    replay_posts,
)
from scalper.exec.queue import (
    QUEUE_PROB_LOG,
    QUEUE_PROB_LOG2,
    QUEUE_PROB_POWER,
    QUEUE_PROB_POWER2,
    QUEUE_PROB_POWER3,
    QUEUE_RISK_AVERSE,
)
from scalper.ingest.lobster import import_lobster
from scalper.ingest.tickfile import TickData

NS_PER_S = 1_000_000_000
SESSIONS = {"GOOG_10": ("GOOG", 10), "GOOG_5": ("GOOG", 5), "GOOG_1": ("GOOG", 1), "AAPL_1": ("AAPL", 1)}
STEM = "{symbol}_2012-06-21_34200000_57600000_{kind}_{levels}.csv"
KINDS = ("message", "orderbook")
MODELS: dict[str, tuple[int, float]] = {
    "risk_averse": (QUEUE_RISK_AVERSE, 0.0),
    "prob_power_2": (QUEUE_PROB_POWER, 2.0),
    "prob_power_3": (QUEUE_PROB_POWER, 3.0),
    "prob_log": (QUEUE_PROB_LOG, 0.0),
    "prob_power2_2": (QUEUE_PROB_POWER2, 2.0),
    "prob_log2": (QUEUE_PROB_LOG2, 0.0),
    "prob_power3_3": (QUEUE_PROB_POWER3, 3.0),
}
"""The L2 models compared (hftbacktest's functions; the exponents its examples use)."""


def grid_posts(data: TickData, interval_s: float, horizon_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(post_ts, side, expiry_ts)``: a bid and an ask post every ``interval_s`` from one interval
    after the first event while a whole horizon fits before the last (int64 ns, +1 / -1)."""
    step, horizon = int(interval_s * NS_PER_S), int(horizon_s * NS_PER_S)
    if step <= 0 or horizon <= 0:
        raise ValueError(f"interval_s and horizon_s must be > 0; got {interval_s!r}, {horizon_s!r}")
    times = np.arange(int(data.ts_event[0]) + step, int(data.ts_event[-1]) - horizon, step, dtype=np.int64)
    post_ts = np.repeat(times, 2)
    side = np.tile(np.array([1, -1], dtype=np.int64), times.shape[0])
    return post_ts, side, post_ts + horizon


def _pct(x: np.ndarray, q: float) -> float | None:
    return float(np.percentile(x, q)) if x.size else None


def compare(truth: dict[str, np.ndarray], model: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, Any]:
    """Compare one model's per-post results with the truth's over the posts ``keep`` (bool mask)."""
    t_fill = (truth["fill_ts"] != NO_FILL) & keep
    m_fill = (model["fill_ts"] != NO_FILL) & keep
    both = t_fill & m_fill
    err = (model["fill_ts"][both] - truth["fill_ts"][both]) / NS_PER_S
    abs_err = np.abs(err)
    queue = both[both] & (truth["cause"][both] == FILL_QUEUE)
    n_truth = int(t_fill.sum())
    return {
        "fills": int(m_fill.sum()),
        "truth_fills": n_truth,
        "both": int(both.sum()),
        "model_only": int((m_fill & ~t_fill).sum()),
        "truth_only": int((t_fill & ~m_fill).sum()),
        "share_both": float(both.sum() / n_truth) if n_truth else None,
        "exact": int(np.count_nonzero(err == 0)),
        "early": int(np.count_nonzero(err < 0)),
        "late": int(np.count_nonzero(err > 0)),
        "abs_err_median_s": _pct(abs_err, 50),
        "abs_err_p90_s": _pct(abs_err, 90),
        "abs_err_median_differing_s": _pct(abs_err[abs_err > 0], 50),
        "queue": {
            "n": int(queue.sum()),
            "early": int(np.count_nonzero(err[queue] < 0)),
            "late": int(np.count_nonzero(err[queue] > 0)),
        },
    }


def measure(data: TickData, interval_s: float = 10.0, horizon_s: float = 60.0) -> dict[str, Any]:
    """Run the truth and every model of :data:`MODELS` on the grid posts of ``data`` (schema v2).

    Returns a JSON-ready dict: ``posts`` (placed), ``excluded_left_view``, ``truth_fills_by_cause``
    (``queue``, ``trade_through``, ``best_through``) and ``models`` (name -> :func:`compare`).

    Raises
    ------
    ValueError
        If ``data`` has no order ids.
    """
    post_ts, side, expiry = grid_posts(data, interval_s, horizon_s)
    arrival = order_arrivals(data)
    truth = replay_posts(data, post_ts, side, expiry, model=QUEUE_L3, arrival=arrival)
    placed = (truth["flags"] & POST_NOT_PLACED) == 0
    left = (truth["flags"] & POST_LEFT_VIEW) != 0
    keep = placed & ~left
    filled = (truth["fill_ts"] != NO_FILL) & keep
    causes = np.bincount(truth["cause"][filled], minlength=4)
    out: dict[str, Any] = {
        "posts": int(placed.sum()),
        "excluded_left_view": int((placed & left).sum()),
        "truth_fills_by_cause": {
            "queue": int(causes[1]),
            "trade_through": int(causes[2]),
            "best_through": int(causes[3]),
        },
        "models": {},
    }
    for name, (model, param) in MODELS.items():
        res = replay_posts(data, post_ts, side, expiry, model=model, param=param)
        out["models"][name] = compare(truth, res, keep)
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(results: dict[str, Any]) -> str:
    """Return the results of :func:`run` as a fixed-width text table, one row per session and model."""
    head = (
        f"{'session':8} {'model':14} {'fills':>6} {'L3':>6} {'both/L3':>8} {'exact':>6} {'early':>6} {'late':>5}"
        f" {'|err| med s':>11} {'p90 s':>8} {'med diff s':>10} {'queue e/l':>10}"
    )
    lines = [head, "-" * len(head)]
    for session, res in results["sessions"].items():
        for name, c in res["models"].items():
            lines.append(
                f"{session:8} {name:14} {c['fills']:6d} {c['truth_fills']:6d} {_fmt(c['share_both'], '8.3f')}"
                f" {c['exact']:6d} {c['early']:6d} {c['late']:5d} {_fmt(c['abs_err_median_s'], '11.4f')}"
                f" {_fmt(c['abs_err_p90_s'], '8.3f')} {_fmt(c['abs_err_median_differing_s'], '10.3f')}"
                f" {c['queue']['early']:>4d}/{c['queue']['late']:<5d}"
            )
        causes = res["truth_fills_by_cause"]
        lines.append(
            f"{session:8} posts {res['posts']} (excluded, level left the view: {res['excluded_left_view']});"
            f" L3 fills by cause: queue {causes['queue']}, trade through {causes['trade_through']},"
            f" best through {causes['best_through']}"
        )
    return "\n".join(lines)


def run(data_dir: Path, sessions: list[str], interval_s: float, horizon_s: float) -> dict[str, Any]:
    """Import each LOBSTER session as market-by-order and :func:`measure` it.

    Raises
    ------
    ValueError
        For an unknown session name; ``FileNotFoundError`` for a missing file.
    """
    out: dict[str, Any] = {"interval_s": interval_s, "horizon_s": horizon_s, "lot": 1, "sessions": {}}
    for name in sessions:
        if name not in SESSIONS:
            raise ValueError(f"unknown session {name!r}; known: {', '.join(SESSIONS)}")
        symbol, levels = SESSIONS[name]
        msg, book = (data_dir / "lobster" / STEM.format(symbol=symbol, kind=k, levels=levels) for k in KINDS)
        for path in (msg, book):
            if not path.is_file():
                raise FileNotFoundError(f"LOBSTER file {path} not found")
        data = import_lobster(msg, book, mbo=True).data
        out["sessions"][name] = measure(data, interval_s, horizon_s)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table and write the JSON (see the module docstring)."""
    default_dir = Path(
        os.environ.get("SCALPER_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data")
    )
    parser = argparse.ArgumentParser(description="L2 queue models versus the exact L3 queue on LOBSTER sessions.")
    parser.add_argument("--data-dir", type=Path, default=default_dir, help="real-data folder (holds lobster/)")
    parser.add_argument("--sessions", default=",".join(SESSIONS), help="comma-separated: " + ", ".join(SESSIONS))
    parser.add_argument("--interval-s", type=float, default=10.0, help="seconds between post times (both sides)")
    parser.add_argument("--horizon-s", type=float, default=60.0, help="seconds a post rests before it is canceled")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    try:
        results = run(args.data_dir, args.sessions.split(","), args.interval_s, args.horizon_s)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
