"""The ``scalper`` command line."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scalper.engine.sweep_cli import sweep_cmd

app = typer.Typer(
    help="scalper: low-latency event-driven scalping engine (replay, train, backtest).", no_args_is_help=True
)
data_app = typer.Typer(help="Import, generate and inspect tick files (Parquet schema v1).", no_args_is_help=True)
import_app = typer.Typer(help="Convert venue recordings to tick files.", no_args_is_help=True)
app.add_typer(data_app, name="data")
data_app.add_typer(import_app, name="import")

console = Console()
err = Console(stderr=True, soft_wrap=True)  # error messages carry paths: never hard-wrap them

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config (see configs/default.toml); defaults when omitted."),
]


def _fail(exc: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=2)


def _config(path: Path | None):
    from scalper.engine.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(exc)


def _events_bar(label: str) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=False
    )


@import_app.command("lobster")
def import_lobster_cmd(
    message_csv: Annotated[Path, typer.Argument(help="LOBSTER message file (6 columns, no header).")],
    orderbook_csv: Annotated[Path, typer.Argument(help="LOBSTER order-book file (4 x levels columns).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Tick file to write (.parquet).")],
    date: Annotated[
        str | None, typer.Option(help="Session date YYYY-MM-DD (US/Eastern); parsed from the file name by default.")
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol; parsed from the file name by default.")] = None,
    mbo: Annotated[
        bool,
        typer.Option(
            "--mbo",
            help="Market-by-order: also write each message's order id (tick-file schema v2); same L2 events.",
        ),
    ] = False,
) -> None:
    """Convert a LOBSTER message + order-book pair into a tick file (schema v1, or v2 with --mbo)."""
    from scalper.ingest import tickfile
    from scalper.ingest.lobster import LobsterFormatError, import_lobster

    t0 = time.perf_counter()
    try:
        session = dt.date.fromisoformat(date) if date else None
        res = import_lobster(message_csv, orderbook_csv, session_date=session, symbol=symbol, mbo=mbo)
        tickfile.write(out, res.data)
    except (LobsterFormatError, tickfile.TickFileError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(
        f"wrote {out} (schema v{res.data.schema_version}): {len(res.data):,} events from {res.rows:,} messages"
        f" ({res.levels} levels, "
        f"{res.n_trades:,} trades, {res.unchanged_rows:,} messages with no visible change)"
        f" in {time.perf_counter() - t0:.2f} s; "
        f"every book row follows from its message ({res.deep_rows:,} beyond level {res.levels}: size change not visible"
        + (f"; {res.unchecked_crosses:,} crosses not checked" if res.unchecked_crosses else "")
        + ")"
        + (
            f"; {res.rounded_times:,} time(s) with more than 9 decimals rounded to the nanosecond"
            f" (first at row {res.first_rounded_row:,})"
            if res.rounded_times
            else ""
        )
    )


@import_app.command("binance")
def import_binance_cmd(
    files: Annotated[
        list[Path], typer.Argument(help="Recording files (<local_ts> <json> lines, gzip ok), earliest first.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Tick file to write (.parquet).")],
    market: Annotated[
        str | None, typer.Option(help="spot, usdm or coinm; inferred from the streams by default.")
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol to keep; the first one seen by default.")] = None,
    tick_size: Annotated[
        float | None, typer.Option(help="Price increment; known symbols or the snapshot's decimals by default.")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Count malformed lines and stop the book at a gap instead of failing.")
    ] = False,
) -> None:
    """Convert raw Binance websocket recordings (diff depth + REST snapshot + trades) into a tick file."""
    from scalper.ingest import tickfile
    from scalper.ingest.binance import BinanceImportError, Market, RecordingError, import_binance

    t0 = time.perf_counter()
    try:
        res = import_binance(
            files, market=Market(market) if market else None, symbol=symbol, tick_size=tick_size, skip_bad=skip_bad
        )
        tickfile.write(out, res.data)
    except (BinanceImportError, RecordingError, tickfile.TickFileError, ValueError, OSError) as exc:
        _fail(exc)
    wall = time.perf_counter() - t0
    n_msgs = sum(res.messages.values())
    gaps = {k.name if hasattr(k, "name") else str(k): v for k, v in res.sync.items() if v}
    console.print(
        f"wrote {out}: {len(res.data):,} events from {n_msgs:,} messages ({res.market}) in {wall:.2f} s "
        f"({n_msgs / wall:,.0f} msg/s); diffs applied {res.applied_diffs:,}; sequencer {gaps}; "
        f"bookTicker matches {res.ticker_matches:,}, mismatches {res.ticker_mismatches:,}"
        + (f"; malformed {res.malformed}" if res.malformed else "")
    )


@import_app.command("tardis")
def import_tardis_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Tick file to write (.parquet).")],
    tick_size: Annotated[float, typer.Option(help="Price increment, quote currency (Tardis CSVs do not carry it).")],
    lot_size: Annotated[float, typer.Option(help="Size increment, base units.")],
    book: Annotated[Path | None, typer.Option(help="incremental_book_L2 CSV.")] = None,
    trades: Annotated[Path | None, typer.Option(help="trades CSV.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Count bad rows instead of failing.")] = False,
) -> None:
    """Convert Tardis.dev incremental_book_L2 and/or trades CSVs into a tick file."""
    from scalper.ingest import tickfile
    from scalper.ingest.tardis import TardisFormatError, import_tardis

    try:
        res = import_tardis(book, trades, tick_size=tick_size, lot_size=lot_size, skip_bad=skip_bad)
        tickfile.write(out, res.data)
    except (TardisFormatError, tickfile.TickFileError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(
        f"wrote {out}: {len(res.data):,} events, {res.snapshots} snapshot(s)"
        + (f"; skipped {res.skipped}" if res.skipped else "")
    )


@import_app.command("bybit")
def import_bybit_cmd(
    file: Annotated[Path, typer.Argument(help="Bybit v5 orderbook.N JSON lines (or a .zip holding one).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Tick file to write (.parquet).")],
    tick_size: Annotated[
        float | None, typer.Option(help="Price increment; inferred from the snapshot by default.")
    ] = None,
    lot_size: Annotated[
        float | None, typer.Option(help="Size increment; inferred from the snapshot by default.")
    ] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Count bad lines and gaps instead of failing.")] = False,
) -> None:
    """Convert a Bybit order-book history file (snapshot + deltas, u-continuity checked) into a tick file."""
    from scalper.ingest import tickfile
    from scalper.ingest.bybit import BybitFormatError, import_bybit

    try:
        res = import_bybit(file, tick_size=tick_size, lot_size=lot_size, skip_bad=skip_bad)
        tickfile.write(out, res.data)
    except (BybitFormatError, tickfile.TickFileError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(
        f"wrote {out}: {len(res.data):,} events from {res.lines:,} lines, {res.gaps} gap(s)"
        + (f"; skipped {res.skipped}" if res.skipped else "")
    )


@app.command("replay-server")
def replay_server_cmd(
    files: Annotated[
        list[Path], typer.Argument(help="Binance recording files, earliest first (the first holds the REST snapshot).")
    ],
    port: Annotated[int, typer.Option(help="Loopback port for websocket and REST (0 = any free port).")] = 9443,
    host: Annotated[str, typer.Option(help="Address to bind; keep it on loopback.")] = "127.0.0.1",
    speed: Annotated[
        float, typer.Option(help="Replay speed: 1 = recorded pace, 10 = ten times faster, 0 = unpaced.")
    ] = 1.0,
) -> None:
    """Serve a Binance recording over a real websocket (combined streams) plus REST depth, for the live handler.

    Send SIGUSR1 to drop every client connection (a venue disconnect) and SIGUSR2 to skip the next
    diff (a missing-diff gap).
    """
    import asyncio
    import signal

    from scalper.ingest.binance import Recording, RecordingError
    from scalper.ingest.binance.replay_server import ReplayServer

    async def serve() -> None:
        try:
            srv = await ReplayServer(
                ((ln.local_ts_ns, ln.raw) for ln in Recording(files)), speed=speed, host=host, port=port
            ).start()
        except (RecordingError, ValueError, OSError) as exc:
            _fail(exc)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(srv.drop_connections()))
        loop.add_signal_handler(signal.SIGUSR2, srv.skip_next_diff)
        console.print(
            f"serving {len(files)} file(s) on {srv.ws_url}/stream?streams=..."
            f" and {srv.rest_url}/fapi|api|dapi/.../depth (speed {speed:g})"
        )
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await srv.close()
        console.print(f"replayed {srv.stats.sent:,} messages to {srv.stats.connections} connection(s)")

    asyncio.run(serve())


@data_app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Tick file to write (.parquet).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    duration_s: Annotated[float, typer.Option(help="Simulated session length, s.")] = 1800.0,
) -> None:
    """Generate a SYNTHETIC session from a seeded stochastic order-flow model (offline demo data)."""
    from scalper.ingest import tickfile
    from scalper.ingest.synthetic import SyntheticConfig, generate_session

    try:
        data = generate_session(SyntheticConfig(seed=seed, duration_s=duration_s))
        tickfile.write(out, data)
    except (ValueError, OSError) as exc:
        _fail(exc)
    console.print(f"wrote {out}: {len(data):,} synthetic events over {duration_s:g} s (seed {seed})")


@data_app.command("inspect")
def inspect_cmd(file: Annotated[Path, typer.Argument(help="Tick file (.parquet).")]) -> None:
    """Print instrument, span, event counts, spreads and any crossed or locked books of a tick file."""
    from scalper.ingest import tickfile
    from scalper.ingest.inspect import format_report, inspect_tickfile

    try:
        data = tickfile.read(file)
    except tickfile.TickFileError as exc:
        _fail(exc)
    console.print(format_report(inspect_tickfile(data)))


_TRAIN_ROWS = (
    ("rows", "rows", "{:,}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("  baseline", "baseline_accuracy", "{:.4f}"),
    ("balanced accuracy", "balanced_accuracy", "{:.4f}"),
    ("  baseline", "baseline_balanced_accuracy", "{:.4f}"),
    ("log-loss", "log_loss", "{:.4f}"),
    ("  baseline (priors)", "baseline_log_loss", "{:.4f}"),
)


def _train(ticks: Path | list[Path], out: Path, cfg) -> None:
    from scalper.ingest.tickfile import TickFileError
    from scalper.models.onnx_export import ParityError
    from scalper.models.train import TrainingError, train_models
    from scalper.risk.kelly import round_trip_fee_bps

    files = [ticks] if isinstance(ticks, Path) else ticks
    # First-passage labels follow the trade this config makes: unset barriers come from [risk] and [exec].
    fee = round_trip_fee_bps(cfg.exec.taker_fee_bps, cfg.exec.taker_fee_bps)  # the taker trade's round trip
    labels = cfg.labels.with_trade(cfg.risk.take_profit_bps, cfg.risk.stop_loss_bps, cfg.exec.latency_ms, fee)
    t0 = time.perf_counter()
    try:
        results = train_models(
            files,
            out,
            cfg.features,
            labels,
            cfg.train,
            on_horizon=lambda r: err.print(f"  trained {r.horizon_s:g} s -> {r.onnx_path}"),
        )
    except (TrainingError, TickFileError, ParityError, ValueError, OSError) as exc:
        _fail(exc)
    table = Table(title=f"test span of {files[-1].name} (last walk-forward fold)")
    table.add_column("metric")
    for r in results:
        table.add_column(f"{r.horizon_s:g} s", justify="right")
    for label, key, fmt in _TRAIN_ROWS:
        table.add_row(label, *(fmt.format(getattr(r.card.metrics["test"], key)) for r in results))
    table.add_row("trees", *(str(r.card.n_trees) for r in results))
    table.add_row("ONNX parity (max |dp|)", *(f"{r.card.parity_max_abs_diff:.1e}" for r in results))
    console.print(table)
    console.print(f"models in {out} ({time.perf_counter() - t0:.1f} s)")
    # The last file only: the shipped model's test span ends there, earlier files hold its training rows.
    _evaluate(out, files[-1:], out / "evaluation", cfg)


@app.command("train")
def train_cmd(
    ticks: Annotated[
        list[Path],
        typer.Option("--ticks", "-t", help="Tick file to learn from; repeat for several sessions, in time order."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Model directory to write (.onnx + .card.json per horizon).")
    ],
    config: ConfigOpt = None,
) -> None:
    """Train a LightGBM model per horizon over purged walk-forward folds, export the last to ONNX, check parity."""
    _train(ticks, out, _config(config))


def _evaluate(
    model: Path,
    ticks: list[Path],
    out: Path,
    cfg,
    replicates: int = 1000,
    seed: int = 0,
    threshold: float | None = None,
) -> None:
    from scalper.ingest.tickfile import TickFileError
    from scalper.models.card import ModelCardMismatch
    from scalper.models.evaluate import evaluate_model_dir
    from scalper.models.evaluation_report import table_rows, verdict_lines, write_evaluation_report
    from scalper.models.inference import load_model_dir

    if threshold is None:
        # Enter when Kelly would bet with the configured barriers: f* = p - (1 - p) / b > 0, b = take-profit / stop.
        threshold = 1.0 / (1.0 + cfg.risk.take_profit_bps / cfg.risk.stop_loss_bps)
    bar = _events_bar("evaluate")
    try:
        predictors = load_model_dir(model).predictors
        with bar:
            task = bar.add_task("evaluate", total=len(ticks) + len(predictors))
            ev = evaluate_model_dir(
                model,
                ticks,
                cfg.features,
                threshold,
                cfg.exec.taker_fee_bps,
                replicates=replicates,
                seed=seed,
                on_step=lambda _: bar.advance(task),
            )
        write_evaluation_report(out, ev, predictors[0].card.classes)
    except (TickFileError, ModelCardMismatch, ValueError, OSError) as exc:
        _fail(exc)
    table = Table(title=f"out of sample: {', '.join(f'{g.file} ({g.span})' for g in ev.segments)}")
    table.add_column("metric")
    for h in ev.horizons:
        table.add_column(h, justify="right")
    for name, cells in table_rows(ev.horizons):
        table.add_row(name, *(c.replace("**", "") for c in cells))
    console.print(table)
    for line in verdict_lines(ev):
        console.print(line)
    console.print(f"evaluation report in {out}: evaluation.md, evaluation.json, reliability_<H>.png")


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Argument(help="Model directory from `scalper train`.")],
    ticks: Annotated[list[Path], typer.Argument(help="Tick files to score (a training file: its test span only).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report directory; <MODEL>/evaluation by default.")
    ] = None,
    config: ConfigOpt = None,
    replicates: Annotated[int, typer.Option(min=1, help="Block-bootstrap resamples for the intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="The trading rule's entry probability in [0, 1); by default where Kelly bets:"
            " 1 / (1 + take-profit / stop)."
        ),
    ] = None,
) -> None:
    """Score a model directory out of sample: every metric beside the prior's, intervals, reliability diagrams.

    A tick file the models were trained on is scored on the cards' test span only; other files whole.
    Writes evaluation.md, evaluation.json and reliability_<H>.png, and prints one verdict per horizon.
    """
    out = out if out is not None else model / "evaluation"
    _evaluate(model, ticks, out, _config(config), replicates, seed, threshold)


def _backtest(ticks: Path, model: Path, out: Path, cfg, in_sample: bool) -> dict:
    from scalper.backtest.session import backtest_file
    from scalper.ingest.tickfile import TickFileError
    from scalper.models.card import ModelCardMismatch

    # The bar appears once the replay starts: a refused tick file or model directory prints one line only.
    bar = _events_bar("replay")
    task = bar.add_task("replay", total=None, start=False)

    def started(n: int) -> None:
        bar.start()
        bar.start_task(task)
        bar.update(task, total=n)

    try:
        metrics = backtest_file(
            ticks,
            model,
            cfg,
            out,
            in_sample=in_sample,
            on_start=started,
            on_progress=lambda i: bar.update(task, completed=i),
        )
    except (TickFileError, ModelCardMismatch, ValueError, OSError) as exc:
        bar.stop()
        _fail(exc)
    bar.stop()
    table = Table(title=f"backtest {ticks.name}" + (" [SYNTHETIC]" if metrics["synthetic"] else ""))
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("baseline", justify="right")
    undefined = metrics["undefined"]
    baselines = metrics["baselines"]
    for key in (
        "events",
        "events_per_second",
        "decisions",
        "trades",
        "hit_rate",
        "gross_pnl",
        "fees",
        "net_pnl",
        "sharpe",
        "max_drawdown",
        "turnover",
        "ends_flat",
    ):
        v = metrics[key]
        base = baselines.get(key, "")
        table.add_row(
            key,
            f"n/a ({undefined[key]})"
            if v is None
            else f"{v:,.4f}"
            if isinstance(v, float)
            else f"{v:,}"
            if isinstance(v, int) and not isinstance(v, bool)
            else str(v),
            "n/a" if base is None else f"{base:,.4f}" if isinstance(base, float) else base,
        )
    st = metrics["strategy"]
    table.add_row("mode", st["mode"], "")
    table.add_row("fills maker / taker", f"{st['maker_fills']:,} / {st['taker_fills']:,}", "")
    if st["mode"] == "maker":
        table.add_row(
            "entries posted / re-quoted",
            f"{st['entries_posted']:,} / {st['entries_requoted']:,}",
            f"withheld by the queue rule {st['entries_withheld_queue']:,}",
        )
    for h, acc in metrics["prediction_accuracy"].items():
        value = "n/a" if acc["accuracy"] is None else f"{acc['accuracy']:.4f}"
        base = "n/a" if acc["baseline_accuracy"] is None else f"{acc['baseline_accuracy']:.4f}"
        table.add_row(f"accuracy {h}", f"{value} ({acc['decisions']:,})", f"{base} (majority class)")
    console.print(table)
    for flag in metrics["flags"]["sharpe"]:
        console.print(f"[yellow]sharpe unreliable:[/] {flag}")
    console.print(
        f"models: {metrics['models']['directory']} ("
        + ", ".join(f"{m['model_file']} {str(m['onnx_sha256'])[:12]}" for m in metrics["models"]["versions"])
        + ")"
    )
    console.print(f"report in {out}: metrics.json, trades.parquet, equity.png")
    return metrics


@app.command("backtest")
def backtest_cmd(
    ticks: Annotated[Path, typer.Option("--ticks", "-t", help="Tick file to replay.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory from `scalper train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path("reports/backtest"),
    config: ConfigOpt = None,
    in_sample: Annotated[
        bool, typer.Option("--in-sample", help="Trade the whole file even if the models were trained on it.")
    ] = False,
) -> None:
    """Replay a tick file in event time through the engine with a simulated exchange and write a report."""
    _backtest(ticks, model, out, _config(config), in_sample)


@app.command("run")
def run_cmd(
    config: ConfigOpt = None,
    feed_url: Annotated[
        str | None,
        typer.Option("--feed-url", help="Websocket base URL (e.g. a local replay server); overrides daemon.ws_url."),
    ] = None,
    rest_url: Annotated[
        str | None, typer.Option("--rest-url", help="REST base URL; overrides daemon.rest_url.")
    ] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Port of /metrics; overrides daemon.metrics_port.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level: DEBUG, INFO, WARNING, ERROR.")] = "INFO",
) -> None:
    """Run the paper-trading daemon on the configured Binance feed until SIGINT/SIGTERM.

    SIGHUP reloads the models, SIGUSR1 halts trading, SIGUSR2 sets reducing-only.
    """
    import logging

    import uvloop

    from scalper.engine.daemon import Daemon, JournalStartError, StartupError
    from scalper.models.card import ModelCardMismatch

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = _config(config)
    overrides = {
        k: v
        for k, v in {"ws_url": feed_url, "rest_url": rest_url, "metrics_port": metrics_port}.items()
        if v is not None
    }
    if overrides:
        cfg = cfg.model_copy(update={"daemon": cfg.daemon.model_copy(update=overrides)})

    async def main() -> int:
        try:
            daemon = Daemon(cfg)
        except (ModelCardMismatch, OSError, ValueError) as exc:
            _fail(exc)
        try:
            return await daemon.run()
        except (JournalStartError, StartupError) as exc:
            _fail(exc)

    raise typer.Exit(code=uvloop.run(main()))


control_app = typer.Typer(
    help="Send an explicit operator command to a running `scalper run` daemon.", no_args_is_help=True
)
app.add_typer(control_app, name="control")
app.command("sweep")(sweep_cmd)


@control_app.command("resume")
def control_resume_cmd(
    config: ConfigOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="Why; journaled with the command.")] = "",
    state: Annotated[
        str, typer.Option("--state", help="The operator's new state: active or reducing_only.")
    ] = "active",
) -> None:
    """Release the operator halt and the automatic latches (drawdown, inference, engine error).

    Reaches the daemon through the Redis list <daemon.halt_key>:control (journal = redis) or a file
    in daemon.control_dir (journal = file); the daemon journals it, then applies it within a second.
    The journal's health and the Redis halt key still restrict trading on their own.
    """
    from scalper.engine.control import command, send_command
    from scalper.risk.intent import TradingState

    cfg = _config(config)
    if state not in ("active", "reducing_only"):
        _fail(ValueError(f"--state {state!r}: use active or reducing_only (SIGUSR1 halts)"))
    try:
        where = send_command(cfg.daemon, command(TradingState[state.upper()], reason))
    except Exception as exc:  # noqa: BLE001 - OSError or a Redis error: one line, exit 2
        _fail(exc)
    console.print(f"sent: {state} via {where}; the daemon journals and applies it within a second (see its log)")


@app.command("bench")
def bench_cmd(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer samples per stage (under a minute).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the table as JSON.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Real data folder; $SCALPER_DATA_DIR or ../shared/data by default.")
    ] = None,
    peer_python: Annotated[
        Path | None,
        typer.Option(
            help="Python of a venv with hftbacktest (see benchmarks/peer_hftbacktest.py): "
            "also run its no-op replay of the same recording and show the ratios."
        ),
    ] = None,
) -> None:
    """Measure every pipeline stage on real recorded data: p50 / p99 / p99.9 / max latency and ops/s."""
    import json
    import os
    import platform

    from scalper.benchmarks.harness import PeerError, run_suite

    root = data_dir or Path(os.environ.get("SCALPER_DATA_DIR", "../shared/data"))
    if not root.is_dir():
        _fail(FileNotFoundError(f"real data folder {root} not found (set --data-dir or SCALPER_DATA_DIR)"))
    try:
        with err.status("benchmarking") as status:
            results = run_suite(
                root, quick, progress=lambda msg: status.update(f"benchmarking: {msg}"), peer_python=peer_python
            )
    except PeerError as exc:
        _fail(exc)
    table = Table(
        title=f"scalper bench{' --quick' if quick else ''}"
        f" ({platform.processor() or platform.machine()}, Python {platform.python_version()})"
    )
    for col in ("stage", "p50 us", "p99 us", "p99.9 us", "max us", "ops/s", "note"):
        table.add_column(col, justify="left" if col in ("stage", "note") else "right")
    for r in results:
        lat = [f"{v / 1e3:,.2f}" if r.p50_ns else "" for v in (r.p50_ns, r.p99_ns, r.p999_ns, r.max_ns)]
        table.add_row(r.stage, *lat, f"{r.ops_per_s:,.0f}", r.note)
    console.print(table)
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {"quick": quick, "python": platform.python_version(), "results": [r.row() for r in results]}, indent=2
            )
            + "\n"
        )
        console.print(f"wrote {json_out}")


@app.command("demo")
def demo_cmd(
    ticks: Annotated[
        Path | None, typer.Option("--ticks", "-t", help="Tick file; a SYNTHETIC session is generated when omitted.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (ticks, models, report).")] = Path(
        "reports/demo"
    ),
    config: ConfigOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic session.")] = 7,
    duration_s: Annotated[float, typer.Option(help="Length of the synthetic session, s.")] = 3600.0,
) -> None:
    """Run the whole pipeline: (generate) -> train -> backtest, writing everything under --out."""
    cfg = _config(config)
    out.mkdir(parents=True, exist_ok=True)
    if ticks is None:
        ticks = out / "synthetic_ticks.parquet"
        generate_cmd(out=ticks, seed=seed, duration_s=duration_s)
    _train(ticks, out / "models", cfg)
    _backtest(ticks, out / "models", out / "report", cfg, in_sample=False)


if __name__ == "__main__":
    app()
