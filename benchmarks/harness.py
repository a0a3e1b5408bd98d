"""``scalper bench``: per-stage latency and throughput on real recorded data.

Every stage is timed one operation at a time with ``time.perf_counter_ns`` (so p50 / p99 / p99.9 / max
are real per-operation figures, timer overhead of ~50 ns included) and checked after timing, so a fast
wrong answer fails. Data: the Binance USD-M ETHUSDT recording (2024-07-18/19) and the NASDAQ GOOG
level-10 LOBSTER session from the shared data folder. Models: LightGBM multiclass, 100 rounds
(300 trees: one per class per round) for every stage, plus 34-round (102-tree) models for the
budget's "100-tree" single-row inference and a one-horizon 102-tree set for the budget's
tick-to-decision, all trained here on the ETHUSDT recording and exported to ONNX. Before each timed
stage the garbage collector runs and the heap is frozen, as the daemon does once started.

The maker stage runs issue 14's queue-position market maker (``backtest/maker_peer.py``) on both
recordings; with a peer interpreter it also runs the same strategy in hftbacktest
(``benchmarks/peer_maker.py``) and reports the share of identical fills, both sides' events/s and the ratio.

The pytest-benchmark suites beside this module time the replay, Binance, maker and memory stages on their own.
"""

from __future__ import annotations

import asyncio
import gc
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import orjson

from scalper.engine.config import EngineConfig
from scalper.models.config import TrainConfig

if TYPE_CHECKING:
    from scalper.ingest.binance import DepthSnapshot, DepthUpdate
    from scalper.ingest.tickfile import TickData
    from scalper.models.inference import ModelSet

T = TypeVar("T")

ETH_FILES = ("hftbacktest/binance_usdm/ethusdt_20240718.gz", "hftbacktest/binance_usdm/ethusdt_20240719.gz")
GOOG = "lobster/GOOG_2012-06-21_34200000_57600000_{}_10.csv"


@dataclass(frozen=True)
class StageResult:
    """Latency distribution of one stage (ns per operation) and its throughput (operations per second)."""

    stage: str
    ops: int
    p50_ns: float
    p99_ns: float
    p999_ns: float
    max_ns: float
    ops_per_s: float
    note: str = ""

    def row(self) -> dict:
        return {
            "stage": self.stage,
            "ops": self.ops,
            "p50_us": self.p50_ns / 1e3,
            "p99_us": self.p99_ns / 1e3,
            "p99_9_us": self.p999_ns / 1e3,
            "max_us": self.max_ns / 1e3,
            "ops_per_s": self.ops_per_s,
            "note": self.note,
        }


def _settle() -> None:
    # As the daemon does once started: collect, then freeze what exists (the stage's inputs) so a
    # full collection does not walk it inside a timed call.
    gc.collect()
    gc.freeze()


def _result(stage: str, samples: np.ndarray, note: str = "") -> StageResult:
    s = np.asarray(samples, dtype=np.float64)
    return StageResult(
        stage,
        int(s.size),
        float(np.percentile(s, 50)),
        float(np.percentile(s, 99)),
        float(np.percentile(s, 99.9)),
        float(s.max()),
        1e9 / float(s.mean()),
        note,
    )


def _time_each(fn: Callable[[T], object], items: Collection[T], repeat: int = 1) -> np.ndarray:
    _settle()
    clock = time.perf_counter_ns
    out = np.empty(len(items) * repeat, dtype=np.int64)
    k = 0
    for _ in range(repeat):
        for item in items:
            t0 = clock()
            fn(item)
            out[k] = clock() - t0
            k += 1
    return out


@dataclass
class BenchData:
    """Inputs shared by the stages: raw frames, the imported tick data and the models."""

    snapshot_raw: bytes
    buffered_raw: list[bytes]
    depth_raw: list[bytes]
    eth: TickData  # the ETH recording
    goog: TickData  # GOOG level 10
    models: ModelSet  # 100 rounds = 300 trees per horizon
    small_models: ModelSet  # 34 rounds = 102 trees per horizon (the budget's "100-tree model")
    eth_features: np.ndarray
    models_dir: Path
    hot_model_dir: Path  # one 5 s horizon, 34 rounds: the budget's tick-to-decision model


def load(data_dir: Path, quick: bool, workdir: Path) -> BenchData:
    """Read the recordings, import them and train the benchmark models (about 10 s)."""
    from scalper.features.batch import compute_features
    from scalper.ingest import tickfile
    from scalper.ingest.binance import Recording, import_binance
    from scalper.ingest.lobster import import_lobster
    from scalper.models.inference import load_model_dir
    from scalper.models.train import train_models

    files = [data_dir / f for f in ETH_FILES]
    snapshot: bytes | None = None
    buffered: list[bytes] = []
    depth: list[bytes] = []
    for line in Recording(files):
        if snapshot is None and b'"lastUpdateId"' in line.raw and b'"stream"' not in line.raw:
            snapshot = line.raw
        elif b"depthUpdate" in line.raw:
            (buffered if snapshot is None else depth).append(line.raw)
    eth = import_binance(files).data
    goog = import_lobster(data_dir / GOOG.format("message"), data_dir / GOOG.format("orderbook")).data
    ticks = workdir / "eth.parquet"
    tickfile.write(ticks, eth)
    cfg = EngineConfig()
    one_horizon = cfg.labels.model_copy(update={"horizons_s": [5.0]})
    for rounds, name, labels in (
        (100, "models", cfg.labels),
        (34, "small_models", cfg.labels),
        (34, "hot_model", one_horizon),
    ):
        fixed = TrainConfig(n_estimators=rounds, early_stopping_rounds=0, min_child_samples=20)
        train_models(ticks, workdir / name, cfg.features, labels, fixed)
    fm = compute_features(eth)
    assert snapshot is not None, "the recording holds no REST depth snapshot"
    return BenchData(
        snapshot,
        buffered,
        depth[: 2000 if quick else None],
        eth,
        goog,
        load_model_dir(workdir / "models"),
        load_model_dir(workdir / "small_models"),
        fm.X,
        workdir / "models",
        workdir / "hot_model",
    )


def _diff(raw: bytes) -> DepthUpdate:
    # A recorded depthUpdate, parsed outside any timed span.
    from scalper.ingest.binance import DepthUpdate, parse_message

    msg = parse_message(raw)
    assert isinstance(msg, DepthUpdate)
    return msg


def _snapshot(raw: bytes) -> DepthSnapshot:
    from scalper.ingest.binance import DepthSnapshot, parse_message

    msg = parse_message(raw)
    assert isinstance(msg, DepthSnapshot)
    return msg


def stage_decode(d: BenchData, quick: bool) -> StageResult:
    samples = _time_each(orjson.loads, d.depth_raw)
    return _result("decode (orjson.loads, depthUpdate)", samples)


def stage_parse(d: BenchData, quick: bool) -> StageResult:
    from scalper.ingest.binance import DepthUpdate, parse_message

    samples = _time_each(parse_message, d.depth_raw)
    assert isinstance(parse_message(d.depth_raw[-1]), DepthUpdate)
    return _result("parse + normalise prices (depthUpdate -> typed arrays)", samples)


def stage_scan(d: BenchData, quick: bool) -> StageResult:
    from scalper.ingest.binance.fastdepth import DepthFrameParser

    parser = DepthFrameParser(0.01)
    parser.parse(d.depth_raw[0])  # load the compiled scanner before timing
    samples = _time_each(parser.parse, d.depth_raw)
    assert parser.parse(d.depth_raw[-1]) > 0 and parser.price_tick[0] > 0
    return _result("scan depthUpdate -> tick events (numba, the daemon's hot path)", samples)


def _synced_feed(d: BenchData, events=None):
    # The live feed's start: buffer diffs, place the REST snapshot, apply what follows it.
    from scalper.ingest.binance import BinanceOrderBookSequencer, LocalBook, Market, event_time_ns

    seq = BinanceOrderBookSequencer(Market.USDM)
    book = LocalBook(0.01)
    for raw in d.buffered_raw:
        seq.on_diff(_diff(raw))
    snap = _snapshot(d.snapshot_raw)
    book.apply_snapshot(snap)
    if events is not None:
        events.append_snapshot(snap, event_time_ns(snap) or 0, 0)
    for diff in seq.on_snapshot(snap):
        book.apply_diff(diff)
        if events is not None:
            events.append_diff(diff, 0)
    return seq, book


def stage_book_apply(d: BenchData, quick: bool) -> StageResult:
    seq, book = _synced_feed(d)
    diffs = [_diff(r) for r in d.depth_raw]

    def apply(diff):
        for ready in seq.on_diff(diff):
            book.apply_diff(ready)

    samples = _time_each(apply, diffs)
    assert seq.state.name == "SYNCED" and not book.is_crossed()
    assert seq.last_update_id == diffs[-1].final_update_id
    levels = int(book.n[0] + book.n[1])
    return _result("sequence + book apply (per depthUpdate)", samples, f"{levels:,} levels held")


def stage_feature_step(d: BenchData, quick: bool) -> StageResult:
    from scalper.features.kernels import I_EVENTS, PRE_MASK, FeatureState, step

    data = d.goog
    n = 50_000 if quick else len(data)
    cols = [c[:n].tolist() for c in data.kernel_columns()]
    warm = FeatureState()  # compile (or load) the kernel before timing, on a throwaway state
    step(*warm.arrays(), *(c[0] for c in cols), warm.feat)
    state = FeatureState()
    arrays, feat = state.arrays(), state.feat
    rows = list(zip(*cols, strict=True))

    def one(ev):
        while step(*arrays, *ev, feat) & PRE_MASK:
            pass

    samples = _time_each(one, rows)
    assert state.ist[I_EVENTS] == n  # every event applied exactly once
    return _result("book + features, live step (per event, from Python)", samples, "GOOG L10")


def stage_inference(d: BenchData, quick: bool) -> list[StageResult]:
    X = d.eth_features[:2000].astype(np.float32)
    out = []
    for p in (*d.models.predictors, d.small_models.predictors[0]):
        samples = _time_each(p.predict, X, repeat=1 if quick else 5)
        np.testing.assert_allclose(p.predict(X[7]), p.predict_batch(X[7:8])[0], rtol=0, atol=1e-6)
        out.append(
            _result(f"inference 1 row, {p.card.horizon_s:g} s model", samples, f"{p.card.n_trees} trees, IO binding")
        )
    p = d.models.predictors[0]
    batches = [X[i : i + 256] for i in range(0, len(X) - 255, 256)]
    samples = _time_each(p.predict_batch, batches, repeat=5) / 256
    out.append(_result("inference batched (per row, 256 rows a call)", samples, f"{p.card.n_trees} trees"))
    return out


def stage_risk(d: BenchData, quick: bool) -> StageResult:
    from scalper.features.kernels import I_IS_VALID, I_LAST_BOOK_TS, FeatureState
    from scalper.risk.config import RiskConfig
    from scalper.risk.intent import ApprovedOrder
    from scalper.risk.limits import RiskManager

    rm = RiskManager(
        RiskConfig(max_position=1e9, max_order_notional=1e12, max_orders_per_second=10_000), 0.01, 0.001, 0.5
    )
    book = FeatureState()
    book.px[0, 0], book.px[1, 0] = 340_000, 340_001  # ticks of 0.01: 3400.00 / 3400.01
    book.n[:] = 1
    book.ist[I_IS_VALID] = 1
    # One entry a millisecond: 1,000 in any second, inside the 10,000 a second allowed, so each is approved.
    items = [i * 1_000_000 for i in range(20_000 if quick else 100_000)]

    def enter(ts_ns):
        book.ist[I_LAST_BOOK_TS] = ts_ns
        return rm.enter_at_touch(ts_ns, 1, 0.7, 2e-4, 0.01, book.px, book.n, book.ist)

    samples = _time_each(enter, items)
    assert rm.approved_count == len(items) and isinstance(enter(items[-1]), ApprovedOrder)
    return _result(
        "risk: Kelly size + pre-trade checks (RiskManager.enter_at_touch)",
        samples,
        "approved entries, limit 2 bps past the ask",
    )


def _approved_orders(n: int) -> list:
    # n distinct approvals through the risk layer's public check: exits closing part of a short
    # position, which it approves whatever the book and the order rate (only it makes ApprovedOrder).
    from scalper.risk.config import RiskConfig
    from scalper.risk.intent import ApprovedOrder, OrderIntent
    from scalper.risk.limits import RiskManager
    from scalper.risk.market import MarketState

    rm = RiskManager(RiskConfig(), 0.01, 0.001, 0.5)
    rm.on_fill(-1, 0.01 * n, 3400.0, 0.0)
    market = MarketState(0, 3400.0, 3400.01, 1, 0, True)
    orders = [rm.check(OrderIntent(i, 1, 0.01, 3400.5, True, "take_profit"), market) for i in range(n)]
    assert all(isinstance(o, ApprovedOrder) for o in orders)
    return orders


def stage_submit(d: BenchData, quick: bool) -> StageResult:
    from scalper.exec.simulated import SimulatedExchange

    orders = _approved_orders(20_000 if quick else 100_000)
    warm = SimulatedExchange(1_000_000, 0.5, 0.01, 0.001, keep_history=False)
    warm.submit(orders[0], 0)
    ex = SimulatedExchange(1_000_000, 0.5, 0.01, 0.001, keep_history=False)
    _settle()
    clock = time.perf_counter_ns
    samples = np.empty(len(orders), dtype=np.int64)
    for i, o in enumerate(orders):
        t0 = clock()
        ex.submit(o, i)
        samples[i] = clock() - t0
    assert ex.next_order_id == len(orders) + 1
    return _result("adapter submit (simulated venue)", samples)


def stage_tick_to_decision(d: BenchData, quick: bool) -> list[StageResult]:
    """Raw frame bytes in, risk-checked order intent out, through the daemon's own objects.

    A real :class:`~scalper.engine.daemon.Daemon` (feed hot path, kernel, models, risk, journaled paper
    venue, metrics) takes each recorded depthUpdate as its websocket session would
    (:meth:`~scalper.ingest.binance.feed.BinanceFeed.on_frame`); only the socket read is missing.
    Decisions and preparations are timed through :meth:`~scalper.engine.daemon.Daemon.wrap_steps`. A
    deciding frame is timed from its bytes to the end of the decision (intent sent to the venue, or
    refused); the frame's events after the decision point are applied next, outside that span (the
    tick-to-book row times whole frames). Between frames the journal writer runs, untimed, so orders
    become durable and reach the venue as they do live, and the loop runs once, as it does between two
    socket reads: that is where the daemon prepares the next decision (``daemon.prepare_decisions``).
    Risk is set so that decisions size an entry by Kelly and some pass every check and fill (take-profit
    30 bps, stop-loss 10 bps).

    Decisions are reported as flat (no position, nothing in flight: the models' call is sized and
    checked, the budget's "risk-checked order intent out"), split into those prepared between frames
    (the frame brought no event before the grid point, so the prepared row was the decision's) and
    those predicted on the path, and in position (the daemon asks no model then and only marks the
    position to the mid). The preparations themselves are timed as a row of their own.

    Frames arrive back to back here, so caches stay warm. The full run adds the same path with the
    process idle for 5 ms before each frame, as it is between frames at the recorded pace: on this
    VM an idle vCPU comes back with cold caches, and that, not the code, sets live latency.
    """
    out = []
    for models_dir, note in ((d.hot_model_dir, "1 horizon, 102 trees"), (d.models_dir, "3 horizons x 300 trees")):
        r = asyncio.run(_daemon_frames(d, models_dir))
        hot = models_dir == d.hot_model_dir
        out.append(
            _result(
                "tick-to-decision, flat (raw depthUpdate -> predicted, risk-checked intent)",
                r.decide_ns[r.flat],
                f"daemon, {note}; {r.prepared.sum()} of {r.flat.sum()} prepared between frames",
            )
        )
        if hot:
            out.append(
                _result("tick-to-decision, flat, prepared between frames", r.decide_ns[r.prepared], f"daemon, {note}")
            )
            on_path = r.decide_ns[r.flat & ~r.prepared]
            if on_path.size:  # every flat decision may have been prepared: no row rather than a row of nothing
                out.append(
                    _result(
                        "tick-to-decision, flat, predicted on the path",
                        on_path,
                        f"daemon, {note}; an event came after the preparation",
                    )
                )
            out.append(
                _result(
                    "decision prepared between frames (loop idle time)",
                    r.prepare_ns,
                    f"daemon, {note}; after each frame that leaves the core flat",
                )
            )
        out.append(
            _result(
                "tick-to-decision, in position (raw depthUpdate -> position marked)",
                r.decide_ns[~r.flat],
                f"daemon, {note}; no prediction",
            )
        )
        if hot:
            book = r.book_ns
    out.append(
        _result("tick-to-book (raw depthUpdate -> kernel book + features)", book, "daemon, frames that do not decide")
    )
    if not quick:
        r = asyncio.run(_daemon_frames(d, d.hot_model_dir, prepare=False))
        out.append(
            _result(
                "tick-to-decision, flat, prepare_decisions off",
                r.decide_ns[r.flat],
                "daemon, 1 horizon, 102 trees; every flat decision predicted on the path",
            )
        )
        for keep_warm, note in ((False, "no keep-warm"), (True, "keep-warm 1 ms")):
            r = asyncio.run(_daemon_frames(d, d.hot_model_dir, idle_s=0.005, frames=1500, keep_warm=keep_warm))
            out.append(
                _result(
                    "tick-to-decision, flat, after 5 ms idle",
                    r.decide_ns[r.flat],
                    f"daemon, 1 horizon, 102 trees; {note}; {r.prepared.sum()} of {r.flat.sum()} prepared",
                )
            )
    return out


def stage_kernel_path(d: BenchData, quick: bool) -> StageResult:
    """The floor under tick-to-decision: what the numba kernels and ONNX Runtime cost on their own.

    Per recorded depthUpdate: the daemon's frame kernel (``engine/framepath.py``: a decision due
    before the frame is taken off its head; otherwise scan the bytes to tick events, continue the
    sequence from the ids, apply and featurise up to the decision), then the prediction of the
    102-tree model; timed to the prediction, as the daemon row is timed to the intent. No risk, no
    daemon objects, no metrics. The daemon row minus this row is what Python costs around them.
    """
    from scalper.engine.framepath import DUE_BEFORE_FRAME, run_depth_frame
    from scalper.features.kernels import CODE_DECISION, PRE_MASK, FeatureState, run_until, step
    from scalper.ingest.binance import BinanceOrderBookSequencer, EventBuffer, Market, event_time_ns
    from scalper.ingest.binance.fastdepth import DepthFrameParser
    from scalper.models.inference import load_model_dir

    predictor = load_model_dir(d.hot_model_dir).predictors[0]
    state = FeatureState()
    arrays, feat = state.arrays(), state.feat
    seq = BinanceOrderBookSequencer(Market.USDM)
    events = EventBuffer(1 << 15)

    def apply_slow(diffs) -> None:  # the general path, untimed: snapshot and the diffs placed on it
        for diff in diffs:
            events.append_diff(diff, 0)
        c = events.columns()
        ticks = np.rint(c["price"] / 0.01).astype(np.int64)
        for k in range(len(ticks)):
            while (
                step(
                    *arrays,
                    int(c["ts_event"][k]),
                    int(c["kind"][k]),
                    int(c["side"][k]),
                    int(ticks[k]),
                    float(c["size"][k]),
                    int(c["flags"][k]),
                    feat,
                )
                & PRE_MASK
            ):
                pass
        events.truncate(0)

    for raw in d.buffered_raw:
        seq.on_diff(_diff(raw))
    snap = _snapshot(d.snapshot_raw)
    events.append_snapshot(snap, event_time_ns(snap) or 0, 0)
    apply_slow(seq.on_snapshot(snap))
    parser = DepthFrameParser(0.01)
    args = (*parser.scan_args(), *arrays, feat)
    _settle()
    clock = time.perf_counter_ns
    samples = []
    for raw in d.depth_raw:
        t0 = clock()
        b = np.frombuffer(raw, dtype=np.uint8)
        m, i, code = run_depth_frame(b, seq.ids, *args)
        if m == DUE_BEFORE_FRAME:  # the decision came off the frame's head; its levels come next
            predictor.predict(feat)
            samples.append(clock() - t0)
            m, i, code = run_depth_frame(b, seq.ids, *args)
        if m < 0:
            apply_slow(seq.on_diff(_diff(raw)))
            continue
        if code & CODE_DECISION:
            predictor.predict(feat)
            samples.append(clock() - t0)
        cols = parser.columns(m)
        while code:  # the rest of the frame, untimed (a later decision in it predicts too)
            if code & CODE_DECISION:
                predictor.predict(feat)
            i, code = run_until(*arrays, *cols, i, feat)
    assert len(samples) > 100 and state.is_valid and seq.last_update_id is not None
    return _result(
        "tick-to-prediction, kernels only (scan + apply + features + ONNX)",
        np.array(samples),
        "1 horizon, 102 trees; no risk, no daemon",
    )


@dataclass(frozen=True)
class DaemonRun:
    """What :func:`_daemon_frames` measured: per deciding frame its time (ns), whether the core was
    flat (the models' call sized and checked) and whether it was a flat decision prepared between
    frames; the other frames' times; the preparations' times (ns), made in the loop between frames."""

    decide_ns: np.ndarray
    flat: np.ndarray
    prepared: np.ndarray
    book_ns: np.ndarray
    prepare_ns: np.ndarray


async def _daemon_frames(
    d: BenchData,
    models_dir: Path,
    idle_s: float = 0.0,
    frames: int | None = None,
    keep_warm: bool = False,
    prepare: bool = True,
) -> DaemonRun:
    # idle_s: pause before each frame, the process blocked in a sleep; with keep_warm the pause is
    # spent in the event loop instead, where the daemon's keep-warm task runs, as it does live.
    # prepare: daemon.prepare_decisions.
    from scalper.engine.daemon import Daemon

    cfg = EngineConfig.model_validate(
        {
            "risk": {"take_profit_bps": 30.0, "stop_loss_bps": 10.0},
            "daemon": {
                "market": "usdm",
                "symbol": "ETHUSDT",
                "tick_size": 0.01,
                "lot_size": 0.001,
                "model_dir": str(models_dir),
                "journal_path": str(models_dir / "journal.jsonl"),
                "prepare_decisions": prepare,
            },
        }
    )
    daemon = Daemon(cfg)
    await daemon.journal.start()
    daemon.build_core(1)
    feed, core, ahead = daemon.feed, daemon.core, daemon.prepared
    assert core is not None and ahead is not None  # keep_warm_ms keeps its default: the component is made
    on_frame, flush = feed.on_frame, feed.flush
    feed.sequencer.reset()
    for raw in d.buffered_raw:
        on_frame(raw, time.time_ns())
    feed.place_snapshot(_snapshot(d.snapshot_raw), time.time_ns())
    flush()
    clock = time.perf_counter_ns
    decided_at = []
    can_enter = core.can_enter
    prepare_ns = []

    def time_decisions(decide):
        def timed_decide(g: int, feat: np.ndarray, ts_recv: int) -> None:
            flat = can_enter(g)  # read before the decision changes it; the timed span includes this call
            hits = ahead.hits
            decide(g, feat, ts_recv)
            decided_at.append((clock(), flat, ahead.hits > hits))  # the intent is out (or refused)

        return timed_decide

    def time_preparations(prepare):
        def timed_prepare() -> None:
            t = clock()
            prepare()
            prepare_ns.append(clock() - t)

        return timed_prepare

    daemon.wrap_steps(decide=time_decisions, prepare=time_preparations)
    warm_task = asyncio.create_task(ahead.keep_warm(daemon.stop_event)) if keep_warm else None
    _settle()
    decide, flat, prepared, book = [], [], [], []
    for raw in d.depth_raw[:frames]:
        if warm_task is not None:
            await asyncio.sleep(idle_s)
        elif idle_s:
            time.sleep(idle_s)
        decided_at.clear()
        now = time.time_ns()
        t0 = clock()
        on_frame(raw, now)  # sequenced, applied and handed on, as from the socket
        t1 = clock()
        if decided_at:
            decide.append(decided_at[0][0] - t0)
            flat.append(decided_at[0][1])
            prepared.append(decided_at[0][2])
        else:
            book.append(t1 - t0)
        if daemon.journal.backlog:
            await daemon.journal.flush()
        await asyncio.sleep(0)  # the loop runs what the frame left ready (a decision to prepare), as live
    if warm_task is not None:
        daemon.stop_event.set()
        await warm_task
    await daemon.journal.close()
    fills = daemon.risk.account
    assert len(decide) > 100 and daemon.state.is_valid and feed.is_synced
    if frames is None:
        assert daemon.risk.approved_count > 0 and fills.fees_paid > 0.0  # entries were approved and filled
    prepared_flat = np.array(prepared, dtype=bool) & np.array(flat, dtype=bool)
    assert prepared_flat.sum() == sum(prepared) and (sum(prepared) > 0) == prepare  # ahead, and only flat ones
    return DaemonRun(np.array(decide), np.array(flat, dtype=bool), prepared_flat, np.array(book), np.array(prepare_ns))


def throughput(d: BenchData, quick: bool) -> list[StageResult]:
    """Events per second of the batch path, the full backtest and the event-by-event live replay, and
    of the backtest's replay pass alone (the like-for-like of hftbacktest's no-op replay: the book, the
    decision grid and order wake-ups, no features)."""
    from scalper.backtest.driver import run_backtest
    from scalper.features.batch import compute_features
    from scalper.features.kernels import INT64_MAX, PRE_MASK, FeatureState, run_until, step

    def backtest(data: TickData) -> object:
        return run_backtest(data, d.models, EngineConfig())

    def replay_pass(data: TickData) -> int:
        st = FeatureState()
        st.book_only()
        st.decide_from(INT64_MAX)  # a strategy that never acts: nothing returns to Python
        i, code = run_until(*st.arrays(), *data.kernel_columns(), 0, st.feat)
        assert code == 0 and i == len(data) and st.is_valid
        return i

    out = []
    for name, data in (("GOOG L10", d.goog), ("ETHUSDT", d.eth)):
        n = len(data)
        compute_features(data)
        t = min(_wall(partial(compute_features, data)) for _ in range(3))
        out.append(StageResult(f"batch path: book + features ({name})", n, 0, 0, 0, 0, n / t, "events/s"))
        replay_pass(data)
        t = min(_wall(partial(replay_pass, data)) for _ in range(3))
        out.append(StageResult(f"replay pass: book, grid, wakes ({name})", n, 0, 0, 0, 0, n / t, "events/s"))
        # Best of two: the first run also loads (or compiles) the replay kernel.
        t = min(_wall(partial(backtest, data)) for _ in range(2))
        out.append(StageResult(f"full backtest ({name})", n, 0, 0, 0, 0, n / t, "events/s"))
        if not quick:
            cols = list(zip(*(c.tolist() for c in data.kernel_columns()), strict=True))

            def replay(cols=cols):
                st = FeatureState()
                a, f = st.arrays(), st.feat
                for ev in cols:
                    while step(*a, *ev, f) & PRE_MASK:
                        pass

            t = _wall(replay)
            out.append(StageResult(f"event-by-event live replay ({name})", n, 0, 0, 0, 0, n / t, "events/s"))
    return out


def _wall(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


PEER_SCRIPT = Path(__file__).resolve().parent / "peer_hftbacktest.py"
_PEER_RATE = re.compile(r"= ([\d,]+) events/s")


class PeerError(RuntimeError):
    """The peer benchmark could not be run or its output not read."""


def peer_throughput(data_dir: Path, python: Path, script: Path = PEER_SCRIPT, timeout_s: float = 600.0) -> StageResult:
    """Run hftbacktest's no-op replay of the ETHUSDT recording in its own interpreter and read its events/s.

    hftbacktest pins numpy and numba versions of its own, so it runs in another environment
    (``benchmarks/peer_hftbacktest.py`` says how to make it); ``python`` is that environment's interpreter.

    Raises
    ------
    PeerError
        If the script is missing, the run fails or times out, or its output has no events/s line
        (the message names the command and ends with the run's last output).
    """
    if not script.is_file():
        raise PeerError(f"peer script {script} not found (it ships in the repository's benchmarks/)")
    cmd = [str(python), str(script), *(str(data_dir / f) for f in ETH_FILES)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerError(f"{' '.join(cmd)}: {exc}") from exc
    found = _PEER_RATE.findall(run.stdout)
    if run.returncode != 0 or not found:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        raise PeerError(f"{' '.join(cmd)} exited {run.returncode} without an events/s line: {' | '.join(tail)}")
    rate = float(found[-1].replace(",", ""))
    return StageResult(
        "hftbacktest no-op replay (peer, ETHUSDT)", 0, 0, 0, 0, 0, rate, "events/s, its own converter and venv"
    )


def with_peer_ratios(results: list[StageResult], peer: StageResult) -> list[StageResult]:
    """Return ``results`` and the peer's row, each ETHUSDT throughput row noting its ratio to the peer."""
    out = []
    for r in results:
        if r.stage.endswith("(ETHUSDT)") and r.note == "events/s":
            r = replace(r, note=f"events/s, {r.ops_per_s / peer.ops_per_s:.2f}x hftbacktest")
        out.append(r)
    return [*out, peer]


MAKER_ETH = "maker + queue (ETHUSDT)"
MAKER_GOOG = "maker + queue (GOOG L10)"
MAKER_PEER = "hftbacktest maker (peer, ETHUSDT)"


def stage_maker(d: BenchData, quick: bool, data_dir: Path, peer_python: Path | None = None) -> list[StageResult]:
    """Events/s of the queue-position market maker on GOOG L10 and ETHUSDT (best of ``repeat`` runs);
    with ``peer_python``, the ETHUSDT run is :func:`scalper.benchmarks.peer_maker.compare`'s, and the
    rows add the fill match, hftbacktest's events/s on the same strategy and the ratio of the wall times.

    Raises
    ------
    PeerError
        The peer side failed (:class:`scalper.benchmarks.peer_maker.PeerMakerError`, same message).
    """
    from scalper.backtest.maker_peer import MakerPeerParams
    from scalper.benchmarks.peer_maker import DEFAULT_FILES, PeerMakerError, compare, run_scalper, with_warmup

    repeat = 2 if quick else 3  # best of; hftbacktest's first run compiles its strategy loop
    goog = run_scalper(d.goog, with_warmup(d.goog, MakerPeerParams()), repeat)
    out = [StageResult(MAKER_GOOG, goog.rows, 0, 0, 0, 0, goog.events_per_s, "events/s")]
    if peer_python is None:
        eth = run_scalper(d.eth, with_warmup(d.eth, MakerPeerParams()), repeat)
        return [*out, StageResult(MAKER_ETH, eth.rows, 0, 0, 0, 0, eth.events_per_s, "events/s")]
    try:
        c = compare([data_dir / f for f in DEFAULT_FILES], peer_python, repeat=repeat)
    except PeerMakerError as exc:
        raise PeerError(str(exc)) from exc
    s, p = c.scalper, c.peer
    match = f"fills identical {c.matched}/{max(len(s.keys()), len(p.keys()))} = {c.share_identical:.1%}"
    return [
        *out,
        StageResult(
            MAKER_ETH, s.rows, 0, 0, 0, 0, s.events_per_s, f"events/s, {c.speed_ratio:.2f}x hftbacktest; {match}"
        ),
        StageResult(
            MAKER_PEER, p.rows, 0, 0, 0, 0, p.events_per_s, "events/s, same strategy, its own converter and venv"
        ),
    ]


def run_suite(
    data_dir: Path, quick: bool, progress: Callable[[str], None] | None = None, peer_python: Path | None = None
) -> list[StageResult]:
    """Run every stage and return its results, in pipeline order; with ``peer_python``, run hftbacktest
    (:func:`peer_throughput`) right before the throughput stages and give their ratios to it, and run
    the maker comparison (:func:`stage_maker`)."""
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory() as tmp:
        say("loading recordings and training the benchmark models")
        d = load(data_dir, quick, Path(tmp))
        results: list[StageResult] = []
        for fn in (stage_decode, stage_parse, stage_scan, stage_book_apply, stage_feature_step):
            say(fn.__name__)
            results.append(fn(d, quick))
        say("stage_inference")
        results += stage_inference(d, quick)
        for fn in (stage_risk, stage_submit):
            say(fn.__name__)
            results.append(fn(d, quick))
        say("stage_tick_to_decision")
        results += stage_tick_to_decision(d, quick)
        results.append(stage_kernel_path(d, quick))
        peer = None
        if peer_python is not None:
            say("peer: hftbacktest")
            peer = peer_throughput(data_dir, peer_python)
        say("throughput")
        results += throughput(d, quick)
        if peer is not None:
            results = with_peer_ratios(results, peer)
        say("maker" + (" and hftbacktest's maker" if peer_python is not None else ""))
        results += stage_maker(d, quick, data_dir, peer_python)
    gc.unfreeze()  # the stages froze their inputs; a caller that goes on (tests) gets them collectable again
    return results
