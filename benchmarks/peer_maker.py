"""Fill-for-fill comparison of scalper's market maker with hftbacktest 2.4.4 on the same recording.

Issue 14's check: the model-free market maker of :mod:`scalper.backtest.maker_peer` and the same
strategy in hftbacktest (``benchmarks/peer_maker_hbt.py``, run in hftbacktest's own interpreter)
replay the same Binance recording with the same constant latencies, risk-averse queue model and
fees. Targets: at least 95 % of fills identical in exchange time, side, price and size; final
position equal and PnL within 1 %; scalper faster than the peer on the same run.

    python3 -m scalper.benchmarks.peer_maker --peer-python /tmp/hbtenv/bin/python [FILES ...]

Both sides see the same event times: exchange time is the message's ``T`` on both (hftbacktest's
converter and scalper's importer), and both shift the recorder's local stamps by the same amount,
hftbacktest's ``correct_local_timestamp`` rule (the smallest ``local - T`` becomes 0; the peer
script reports the shift it applied and the comparison checks scalper's equals it). Quoting starts
``warmup_ns`` after scalper's first event, on the 100 ms grid, so the diffs before the REST snapshot
(hftbacktest's converter keeps them, scalper's importer does not) touch no fill.

The output ends with scalper's execution report (:mod:`scalper.backtest.execution_report`: maker
share, fill ratio, queue, time to fill, adverse selection, PnL split) of the same run.

Fills are matched as multisets of (exchange time ns, side, price tick, lots); the share identical is
matched / the larger fill count. Speed: each side's events/s over its own rows (hftbacktest's
converter duplicates the rows whose exchange and local order disagree), and the ratio of the two
wall times of the strategy run (best of ``repeat``), the figure that compares like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scalper.backtest.execution_report import ExecutionReport, execution_report, markdown_section
from scalper.backtest.maker_peer import MakerPeerParams, MakerPeerResult, run_maker_peer
from scalper.exec.passive import fills_table
from scalper.exec.queue import QUEUE_MODEL_NAMES
from scalper.features.batch import compute_features
from scalper.ingest.binance.importer import import_binance
from scalper.ingest.tickfile import Instrument, TickData

PEER_MAKER_SCRIPT = Path(__file__).resolve().parent / "peer_maker_hbt.py"
# The recording `scalper bench` replays (benchmarks/harness.py ETH_FILES): one day split over two files.
DEFAULT_FILES = ("hftbacktest/binance_usdm/ethusdt_20240718.gz", "hftbacktest/binance_usdm/ethusdt_20240719.gz")
DEFAULT_WARMUP_NS = 5_000_000_000
FILL_KEY = ("exch_ts", "side", "price_tick", "qty_lots")
QUEUE_NAMES = {v: k for k, v in QUEUE_MODEL_NAMES.items()}
TARGET_SHARE = 0.95
TARGET_PNL = 0.01


class PeerMakerError(RuntimeError):
    """The hftbacktest side could not be run or its output not read."""


@dataclass(frozen=True)
class SideResult:
    """One side's outcome: fills (dict of int64 arrays, :data:`FILL_KEY` among them) and final state;
    scalper's side also keeps its run's passive-exchange fills table and orders posted (``detail``)."""

    name: str
    fills: dict[str, np.ndarray]
    position_lots: int
    balance: float
    fee: float
    equity: float
    rows: int
    wall_s: float
    local_offset_ns: int
    detail: tuple[dict[str, np.ndarray], int] | None = None

    @property
    def events_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else float("inf")

    def keys(self) -> list[tuple[int, ...]]:
        return list(zip(*(self.fills[k].tolist() for k in FILL_KEY), strict=True))


@dataclass(frozen=True)
class Comparison:
    """The two sides and their fill match (see the module docstring for the definitions)."""

    scalper: SideResult
    peer: SideResult
    matched: int
    only_scalper: list[tuple[int, ...]]
    only_peer: list[tuple[int, ...]]
    context: dict[tuple[int, ...], list[str]] = field(default_factory=dict)
    execution: ExecutionReport | None = None

    @property
    def share_identical(self) -> float:
        most = max(len(self.scalper.keys()), len(self.peer.keys()))
        return self.matched / most if most else 1.0

    @property
    def pnl_rel_diff(self) -> float:
        """|equity difference| / |peer equity| (0 when both are 0)."""
        diff = abs(self.scalper.equity - self.peer.equity)
        return diff / abs(self.peer.equity) if self.peer.equity != 0 else (0.0 if diff == 0 else float("inf"))

    @property
    def speed_ratio(self) -> float:
        """Peer wall time / scalper wall time for the same strategy on the same recording."""
        return self.peer.wall_s / self.scalper.wall_s

    def passes(self) -> bool:
        return (
            self.share_identical >= TARGET_SHARE
            and self.scalper.position_lots == self.peer.position_lots
            and self.pnl_rel_diff <= TARGET_PNL
        )

    def table(self) -> str:
        s, p = self.scalper, self.peer
        lines = [
            f"{'':28}{'scalper':>16}{'hftbacktest':>16}",
            f"{'fills':28}{len(s.keys()):>16}{len(p.keys()):>16}",
            f"{'final position (lots)':28}{s.position_lots:>16}{p.position_lots:>16}",
            f"{'balance (quote)':28}{s.balance:>16.6f}{p.balance:>16.6f}",
            f"{'fees (quote, rebate < 0)':28}{s.fee:>16.6f}{p.fee:>16.6f}",
            f"{'PnL at last mid (quote)':28}{s.equity:>16.6f}{p.equity:>16.6f}",
            f"{'local clock shift (ns)':28}{s.local_offset_ns:>16}{p.local_offset_ns:>16}",
            f"{'rows':28}{s.rows:>16,}{p.rows:>16,}",
            f"{'strategy run (s)':28}{s.wall_s:>16.4f}{p.wall_s:>16.4f}",
            f"{'events/s':28}{s.events_per_s:>16,.0f}{p.events_per_s:>16,.0f}",
            f"identical fills: {self.matched} = {self.share_identical:.1%} (target {TARGET_SHARE:.0%}); "
            f"PnL difference {self.pnl_rel_diff:.2%} (target {TARGET_PNL:.0%}); "
            f"scalper {self.speed_ratio:.2f}x hftbacktest's speed",
        ]
        for name, keys in (("scalper only", self.only_scalper), ("hftbacktest only", self.only_peer)):
            for key in keys[:5]:
                lines.append(f"{name}: exch_ts={key[0]} side={key[1]:+d} price_tick={key[2]} lots={key[3]}")
                lines.extend(f"    {row}" for row in self.context.get(key, []))
        if self.execution is not None:
            lines += ["", markdown_section(self.execution, "Execution (scalper)").rstrip("\n")]
        return "\n".join(lines)


def match_fills(a: list[tuple[int, ...]], b: list[tuple[int, ...]]) -> tuple[int, list, list]:
    """Match two fill lists as multisets; return (matched, only in a, only in b), the rest sorted."""
    ca, cb = Counter(a), Counter(b)
    common = ca & cb
    return sum(common.values()), sorted((ca - common).elements()), sorted((cb - common).elements())


def event_context(data: TickData, ts: int, before_ns: int = 2_000_000, limit: int = 8) -> list[str]:
    """Describe the exchange rows up to ``ts`` (the last ``limit`` within ``before_ns``), for a fill's story."""
    lo = int(np.searchsorted(data.ts_event, ts - before_ns, side="left"))
    hi = int(np.searchsorted(data.ts_event, ts, side="right"))
    kinds = {0: "book", 1: "trade", 2: "clear"}
    return [
        f"ts_event={data.ts_event[i]} {kinds.get(int(data.kind[i]), '?')} side={int(data.side[i]):+d} "
        f"price_tick={int(data.price_tick[i])} size={data.size[i]:g}"
        for i in range(max(lo, hi - limit), hi)
    ]


def run_peer(
    python: Path, files: list[Path], inst: Instrument, params: MakerPeerParams, repeat: int, timeout_s: float
) -> SideResult:
    """Run ``peer_maker_hbt.py`` in ``python`` on ``files`` of instrument ``inst``; read its fills and final state.

    Raises
    ------
    PeerMakerError
        If the interpreter or script is missing, the run fails or times out, or its output is unreadable
        (the message names the command and ends with the run's last output).
    """
    if not Path(python).is_file():
        raise PeerMakerError(f"peer interpreter {python} not found")
    if not (isinstance(params.entry_ns, int) and isinstance(params.response_ns, int)):
        raise PeerMakerError("the hftbacktest side runs constant latencies only (entry_ns, response_ns ints)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fills.npz"
        cmd = [
            str(python),
            str(PEER_MAKER_SCRIPT),
            *map(str, files),
            f"--out={out}",
            f"--tick-size={inst.tick_size!r}",
            f"--lot-size={inst.lot_size!r}",
            f"--step-ns={params.step_ns}",
            f"--entry-ns={params.entry_ns}",
            f"--response-ns={params.response_ns}",
            f"--max-position={params.max_position}",
            f"--maker-fee={params.maker_bps / 1e4!r}",
            f"--taker-fee={params.taker_bps / 1e4!r}",
            f"--quote-from-ns={params.quote_from_ns}",
            f"--quote-until-ns={params.quote_until_ns}",
            f"--queue={QUEUE_NAMES[params.queue_model]}",
            f"--queue-param={params.queue_param!r}",
            f"--repeat={repeat}",
        ]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PeerMakerError(f"{' '.join(cmd)}: {exc}") from exc
        last = run.stdout.strip().splitlines()[-1:] if run.stdout.strip() else []
        if run.returncode != 0 or not last or not out.is_file():
            tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
            raise PeerMakerError(f"{' '.join(cmd)} exited {run.returncode}: {' | '.join(tail)}")
        try:
            rep = json.loads(last[0])
        except json.JSONDecodeError as exc:
            raise PeerMakerError(f"{' '.join(cmd)}: last line is not its JSON report: {last[0]!r}") from exc
        with np.load(out) as npz:
            fills = {k: npz[k].astype(np.int64) for k in npz.files}
    return SideResult(
        "hftbacktest",
        fills,
        int(rep["position_lots"]),
        float(rep["balance"]),
        float(rep["fee"]),
        float(rep["equity"]),
        int(rep["rows"]),
        float(rep["wall_s"]),
        int(rep["local_offset_ns"]),
    )


def run_scalper(data: TickData, params: MakerPeerParams, repeat: int) -> SideResult:
    """Run :func:`run_maker_peer` ``repeat`` times (the first also compiles) and keep the fastest."""
    best: MakerPeerResult | None = None
    for _ in range(max(repeat, 1) + 1):
        res = run_maker_peer(data, params)
        if best is None or res.wall_s < best.wall_s:
            best = res
    assert best is not None
    return SideResult(
        "scalper",
        best.fills,
        best.position_lots,
        best.balance,
        best.fee,
        best.equity,
        best.rows,
        best.wall_s,
        best.local_offset_ns,
        (fills_table(best.exchange), best.submitted),
    )


def execution_of(data: TickData, side: SideResult) -> ExecutionReport | None:
    """scalper's execution report for ``side`` (None for a side without ``detail``), against the mid of
    ``data``'s replayed book (:func:`scalper.features.batch.compute_features`)."""
    if side.detail is None:
        return None
    table, posted = side.detail
    fm = compute_features(data)
    inst = data.instrument
    return execution_report(table, posted, fm.mid_ts, fm.mid_tick, tick_size=inst.tick_size, lot_size=inst.lot_size)


def with_warmup(data: TickData, params: MakerPeerParams, warmup_ns: int = DEFAULT_WARMUP_NS) -> MakerPeerParams:
    """Return ``params`` with ``quote_from_ns`` 0 replaced by ``data``'s first event + ``warmup_ns``, on the grid."""
    if params.quote_from_ns != 0:
        return params
    start = int(data.ts_event[0]) + warmup_ns
    return replace(params, quote_from_ns=-(-start // params.step_ns) * params.step_ns)


def compare(
    files: list[Path],
    peer_python: Path,
    params: MakerPeerParams | None = None,
    warmup_ns: int = DEFAULT_WARMUP_NS,
    repeat: int = 3,
    timeout_s: float = 900.0,
) -> Comparison:
    """Import ``files`` (one Binance recording, earliest first), run both sides and match their fills.

    ``params.quote_from_ns`` 0 (the default) becomes scalper's first event + ``warmup_ns``, rounded up
    to the grid; the peer gets the same window.

    Raises
    ------
    PeerMakerError
        From :func:`run_peer`; or when the two sides shifted the local clock differently (then their
        event times differ and a fill comparison means nothing).
    """
    data = import_binance(files).data
    p = with_warmup(data, params or MakerPeerParams(), warmup_ns)
    peer = run_peer(peer_python, files, data.instrument, p, repeat, timeout_s)
    mine = run_scalper(data, p, repeat)
    if peer.local_offset_ns != mine.local_offset_ns:
        raise PeerMakerError(
            f"local clock shifts differ: scalper {mine.local_offset_ns} ns, hftbacktest {peer.local_offset_ns} ns"
        )
    matched, only_s, only_p = match_fills(mine.keys(), peer.keys())
    context = {key: event_context(data, key[0]) for key in (*only_s[:5], *only_p[:5])}
    return Comparison(mine, peer, matched, only_s, only_p, context, execution_of(data, mine))


def default_peer_python() -> Path | None:
    """``$SCALPER_PEER_PYTHON``, else /tmp/hbtenv/bin/python when it exists, else None."""
    env = os.environ.get("SCALPER_PEER_PYTHON")
    if env:
        return Path(env)
    path = Path("/tmp/hbtenv/bin/python")
    return path if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="recording files; default: the bench's ETHUSDT day")
    ap.add_argument("--peer-python", type=Path, default=None, help="hftbacktest's interpreter")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--entry-ns", type=int, default=MakerPeerParams.entry_ns)
    ap.add_argument("--response-ns", type=int, default=MakerPeerParams.response_ns)
    ap.add_argument("--queue", choices=sorted(QUEUE_MODEL_NAMES), default="risk_averse")
    ap.add_argument("--queue-param", type=float, default=0.0, help="the power models' exponent")
    a = ap.parse_args(argv)
    python = a.peer_python or default_peer_python()
    if python is None:
        ap.error("no peer interpreter: pass --peer-python or set SCALPER_PEER_PYTHON")
    files = a.files
    if not files:
        root = Path(os.environ.get("SCALPER_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
        files = [root / f for f in DEFAULT_FILES]
    params = MakerPeerParams(
        entry_ns=a.entry_ns,
        response_ns=a.response_ns,
        queue_model=QUEUE_MODEL_NAMES[a.queue],
        queue_param=a.queue_param,
    )
    cmp = compare(files, python, params, repeat=a.repeat)
    print(cmp.table())
    return 0 if cmp.passes() else 1


if __name__ == "__main__":
    sys.exit(main())
