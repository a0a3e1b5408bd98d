"""The daemon's Prometheus metrics: what it counts, what it reports as a level, how long things take.

:class:`EngineMetrics` creates every metric once, on its own
:class:`~prometheus_client.CollectorRegistry` unless given one, so tests and several engines in
one process never collide. Names follow the Prometheus conventions (``scalper_`` prefix, base
units, ``_total`` on counters); every help text gives the unit.

Hot-path use goes through attributes bound once at construction, never through ``.labels(...)``
(which takes a lock and looks the children up in a dict on every call)::

    m = EngineMetrics()
    m.events_book.inc()                          # or m.events_by_kind[kind].inc()
    m.orders[OrderStatus.FILLED].inc()
    m.risk_rejections[rejection.reason].inc()
    m.position.set(account.position)
    m.trading_state.set(risk.state)              # a TradingState is an int: 0, 1, 2
    m.observe_tick_to_decision(t_decided_ns - ts_recv_ns)

:func:`serve` exposes the registry over HTTP (loopback by default) on a daemon thread, so a scrape
never runs on the event loop. :func:`snapshot` reads every current value into a dict for logs and tests.

Caveats
-------
- Histogram observations are in seconds; the ``observe_*`` helpers take int64 ns and convert.
- Counters refuse negative increments (``ValueError``): a counter only goes up, and Prometheus
  reads any drop as a process restart.
- The process collector (``process_start_time_seconds`` and friends) lives only on the client's
  default registry and is not added here.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from scalper.engine.hotmetrics import HotCounter, NsHistogram
from scalper.exec.orders import OrderStatus
from scalper.risk.intent import RejectReason

# Divide rather than multiply by 1e-9: division is correctly rounded, so a latency of exactly a
# bucket bound in ns (1_000 ns) lands on that bound (1e-6) and not one ulp above it.
_NS_PER_S = 1e9

LATENCY_BUCKETS_S: tuple[float, ...] = (
    1e-6,
    2e-6,
    5e-6,
    1e-5,
    2e-5,
    5e-5,
    1e-4,
    2e-4,
    5e-4,
    1e-3,
    2e-3,
    5e-3,
    1e-2,
    2e-2,
    5e-2,
    1e-1,
)
"""Upper bounds (s) of the in-process latency histograms: 1 µs .. 100 ms, 1-2-5 per decade."""

JOURNAL_BUCKETS_S: tuple[float, ...] = LATENCY_BUCKETS_S + (2e-1, 5e-1, 1.0)
"""Upper bounds (s) of the journal write histogram: up to 1 s, since a write waits for an fsync or a
Redis round trip, which a slow disk or network stretches far past the in-process latencies."""


class EngineMetrics:
    """Every metric the engine exports, created once on one registry.

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where to register the metrics; a fresh registry when None. Registering twice on one
        registry raises ``ValueError`` (duplicated timeseries).

    Attributes
    ----------
    registry : CollectorRegistry
        The registry holding the metrics below (pass it to :func:`serve` or a push gateway).
    events_book, events_trade, events_clear : HotCounterChild
        ``scalper_events_total{kind}``: market events applied, by tick-file kind.
    events_by_kind : tuple
        The same three children indexed by the tick-file ``kind`` code (0 book, 1 trade, 2 clear).
    sequence_gaps, resyncs, reconnects : Counter
        ``scalper_sequence_gaps_total``, ``scalper_resyncs_total``, ``scalper_reconnects_total``.
    snapshot_requests, snapshot_request_weight : Counter
        ``scalper_snapshot_requests_total`` (REST depth requests sent) and
        ``scalper_snapshot_request_weight_total`` (their venue request weight, which the venue's
        per-minute rate limit counts).
    feed_disconnects : Counter
        ``scalper_feed_disconnects_total{reason}``: market-data connections lost, by reason
        (``frame_too_large``: a frame over the size limit was refused); children made on demand.
    decisions : HotCounter
        ``scalper_decisions_total``: decision points reached (model asked).
    orders : Mapping[OrderStatus, counter child]
        ``scalper_orders_total{status}``, one child per :class:`~scalper.exec.orders.OrderStatus`;
        the label is the lower-case status name (``"filled"``).
    risk_rejections : Mapping[RejectReason, counter child]
        ``scalper_risk_rejections_total{reason}``, one child per
        :class:`~scalper.risk.intent.RejectReason`; the label is the lower-case reason name.
    inference_errors, journal_errors : Counter
        ``scalper_inference_errors_total``, ``scalper_journal_errors_total``.
    model_reloads_refused : Counter
        ``scalper_model_reloads_refused_total``: SIGHUP reloads refused (the running models kept).
    book_age_seconds : Gauge
        ``scalper_book_age_seconds``: time since the last book event, s (see :meth:`set_book_age_ns`).
    position : Gauge
        ``scalper_position``: signed position, base units.
    realized_pnl, unrealized_pnl, drawdown : Gauge
        ``scalper_realized_pnl``, ``scalper_unrealized_pnl``, ``scalper_drawdown`` (peak equity
        minus equity, >= 0), quote currency.
    trading_state : Gauge
        ``scalper_trading_state``: 0 active, 1 reducing-only, 2 halted (the
        :class:`~scalper.risk.intent.TradingState` values).
    book_valid, journal_writable, journal_store_lost : Gauge
        ``scalper_book_valid``, ``scalper_journal_writable``, ``scalper_journal_store_lost``: 1 yes, 0 no.
    model_info : Info
        ``scalper_model_info{version, horizons}`` = 1 (see :meth:`set_model`).
    tick_to_decision, inference : NsHistogram
        ``scalper_tick_to_decision_seconds``, ``scalper_inference_seconds``, s (lock-free, one writer).
    journal_write : Histogram
        ``scalper_journal_write_seconds``, s (written off the hot path). See the ``observe_*`` helpers.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry

        # Updated at every frame and decision: lock-free (engine/hotmetrics.py).
        events = HotCounter(
            "scalper_events",
            "Market events applied to the book, by kind (book, trade, clear); count.",
            reg,
            "kind",
            ("book", "trade", "clear"),
        )
        self.events_book, self.events_trade, self.events_clear = events.children
        self.events_by_kind = (self.events_book, self.events_trade, self.events_clear)

        self._rejected_messages = Counter(
            "scalper_rejected_messages_total",
            "Feed messages or rows rejected and skipped, by reason; count.",
            ["reason"],
            registry=reg,
        )
        self.sequence_gaps = Counter(
            "scalper_sequence_gaps_total",
            "Sequence gaps detected in the book feed; count.",
            registry=reg,
        )
        self.resyncs = Counter(
            "scalper_resyncs_total",
            "Book resynchronisations from a snapshot; count.",
            registry=reg,
        )
        self.reconnects = Counter(
            "scalper_reconnects_total",
            "Market-data connection re-establishments; count.",
            registry=reg,
        )
        self.snapshot_requests = Counter(
            "scalper_snapshot_requests_total",
            "REST depth snapshot requests sent to the venue; count.",
            registry=reg,
        )
        self.snapshot_request_weight = Counter(
            "scalper_snapshot_request_weight_total",
            "Venue request weight of the REST depth snapshot requests"
            " (Binance's weight by limit); request weight units.",
            registry=reg,
        )
        self.feed_disconnects = Counter(
            "scalper_feed_disconnects_total",
            "Market-data connections lost, by reason"
            " (frame_too_large: a frame over the size limit was refused); count.",
            ["reason"],
            registry=reg,
        )
        self.decisions = HotCounter(
            "scalper_decisions",
            "Decision points reached (grid times with a valid book; models asked only when flat); count.",
            reg,
        )
        self.decisions_prepared = Counter(
            "scalper_decisions_prepared_total",
            "Decisions whose prediction was made between frames, ahead of the frame revealing them; count.",
            registry=reg,
        )
        orders = Counter(
            "scalper_orders_total",
            "Order status changes reported by the execution adapter, by status; count.",
            ["status"],
            registry=reg,
        )
        # Children for every enum member exist from the start, so each series is exported as 0
        # before its first event and rate() has a baseline.
        self.orders = MappingProxyType({s: orders.labels(s.name.lower()) for s in OrderStatus})
        rejections = Counter(
            "scalper_risk_rejections_total",
            "Order intents refused by the risk layer, by reason; count.",
            ["reason"],
            registry=reg,
        )
        self.risk_rejections = MappingProxyType({r: rejections.labels(r.name.lower()) for r in RejectReason})
        self.inference_errors = Counter(
            "scalper_inference_errors_total",
            "Model inference calls that raised; count.",
            registry=reg,
        )
        self.journal_errors = Counter(
            "scalper_journal_errors_total",
            "Journal appends that failed; count.",
            registry=reg,
        )
        self.model_reloads_refused = Counter(
            "scalper_model_reloads_refused_total",
            "Model reloads (SIGHUP) refused, the running models kept"
            " (corrupt or missing file, other instrument); count.",
            registry=reg,
        )
        self.engine_errors = Counter(
            "scalper_engine_errors_total",
            "Frames whose processing raised inside the engine (trading halts); count.",
            registry=reg,
        )

        self.book_age_seconds = Gauge(
            "scalper_book_age_seconds",
            "Time since the last book event was applied; seconds.",
            registry=reg,
        )
        self.position = Gauge(
            "scalper_position",
            "Signed position (long > 0); base units.",
            registry=reg,
        )
        self.realized_pnl = Gauge(
            "scalper_realized_pnl",
            "Realized PnL net of fees; quote currency.",
            registry=reg,
        )
        self.unrealized_pnl = Gauge(
            "scalper_unrealized_pnl",
            "Unrealized PnL of the open position at the last mid; quote currency.",
            registry=reg,
        )
        self.drawdown = Gauge(
            "scalper_drawdown",
            "Peak equity minus current equity (>= 0); quote currency.",
            registry=reg,
        )
        self.trading_state = Gauge(
            "scalper_trading_state",
            "Trading state: 0 active, 1 reducing-only, 2 halted; enum code.",
            registry=reg,
        )
        self.book_valid = Gauge(
            "scalper_book_valid",
            "Whether the order book is in sync and uncrossed; 1 yes, 0 no.",
            registry=reg,
        )
        self.journal_writable = Gauge(
            "scalper_journal_writable",
            "Whether the journal store takes records (checked every second); 1 yes, 0 no.",
            registry=reg,
        )
        self.journal_store_lost = Gauge(
            "scalper_journal_store_lost",
            "Whether the journal store was found holding less than was durable in it (restarted empty); 1 yes, 0 no.",
            registry=reg,
        )
        # Info appends "_info" to the name and is exposed as a gauge equal to 1 whose labels carry
        # the data; info() swaps the label set under one lock, so a scrape never sees it missing.
        self.model_info = Info(
            "scalper_model",
            "Loaded model set (version, horizons in s); constant 1.",
            registry=reg,
        )

        # The two decision-path latencies skip prometheus_client's locks (see engine/hotmetrics.py).
        self.tick_to_decision = NsHistogram(
            "scalper_tick_to_decision_seconds",
            "Time from receiving the market event to the decision being made; seconds.",
            LATENCY_BUCKETS_S,
            reg,
        )
        self.inference = NsHistogram(
            "scalper_inference_seconds",
            "Duration of one model inference call (all horizons); seconds.",
            LATENCY_BUCKETS_S,
            reg,
        )
        self.journal_write = Histogram(
            "scalper_journal_write_seconds",
            "Duration of one journal append, flush and fsync included; seconds.",
            buckets=JOURNAL_BUCKETS_S,
            registry=reg,
        )

    def observe_tick_to_decision(self, ns: int) -> None:
        """Record one tick-to-decision latency given in ns (``scalper_tick_to_decision_seconds``)."""
        self.tick_to_decision.observe_ns(ns)

    def observe_inference(self, ns: int) -> None:
        """Record one inference duration given in ns (``scalper_inference_seconds``)."""
        self.inference.observe_ns(ns)

    def observe_journal_write(self, ns: int) -> None:
        """Record one journal append duration given in ns (``scalper_journal_write_seconds``)."""
        self.journal_write.observe(ns / _NS_PER_S)

    def set_book_age_ns(self, age_ns: int) -> None:
        """Set ``scalper_book_age_seconds`` from an age in ns (now minus the last book event's time)."""
        self.book_age_seconds.set(age_ns / _NS_PER_S)

    def count_rejected_message(self, reason: str) -> None:
        """Add one to ``scalper_rejected_messages_total{reason}``.

        Parameters
        ----------
        reason : str
            A short snake_case code from a bounded vocabulary (e.g. a ``ParseReason`` value); never
            free text, since every distinct value becomes its own time series.

        Notes
        -----
        Looks the labelled child up on every call (a lock and a dict lookup):
        rejections are rare and their reasons are venue-specific, so they are not bound in advance.
        """
        self._rejected_messages.labels(reason).inc()

    def set_model(self, version: str, horizons_s: Sequence[float]) -> None:
        """Publish the loaded model set as ``scalper_model_info{version, horizons}`` = 1.

        Parameters
        ----------
        version : str
            Model set version (e.g. the model directory's name or a hash).
        horizons_s : sequence of float
            Prediction horizons, s; exported comma-separated in the given order (``"5,10,30"``).
        """
        self.model_info.info({"version": version, "horizons": ",".join(f"{h:g}" for h in horizons_s)})


def serve(metrics: EngineMetrics, host: str = "127.0.0.1", port: int = 0) -> tuple[WSGIServer, int]:
    """Serve ``metrics.registry`` at ``http://<host>:<port>/metrics`` on a daemon thread.

    Parameters
    ----------
    metrics : EngineMetrics
    host : str
        Address to bind; loopback by default, so the endpoint is not reachable from other hosts
        unless asked (e.g. ``"0.0.0.0"`` behind a firewall).
    port : int
        TCP port; 0 lets the OS pick a free one.

    Returns
    -------
    server : WSGIServer
        Stop it with ``server.shutdown(); server.server_close()``.
    port : int
        The port actually bound (the OS's pick when 0 was asked).

    Raises
    ------
    OSError
        If the address cannot be bound (port in use, unknown host).
    """
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server, server.server_port


def snapshot(metrics: EngineMetrics) -> dict[str, float]:
    """Return every current sample value, keyed ``name`` or ``name{label="value",...}``.

    Histograms contribute their ``_count`` and ``_sum`` (not the buckets); the client's
    ``_created`` timestamps are left out. Label pairs appear in the metric's label order.

    Returns
    -------
    dict of str to float
        E.g. ``{"scalper_decisions_total": 7.0, 'scalper_events_total{kind="book"}': 120.0, ...}``.

    Notes
    -----
    Reads the same samples ``registry.get_sample_value`` reads, in a single ``collect()`` pass:
    calling ``get_sample_value`` per sample would re-collect the whole registry for each one.
    """
    out: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_created")):
                continue
            if sample.labels:
                labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
                out[f"{sample.name}{{{labels}}}"] = sample.value
            else:
                out[sample.name] = sample.value
    return out
