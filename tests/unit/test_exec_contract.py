"""Contract every execution adapter passes: approval, state machine, IOC fills, latency, cancel.

To put another adapter (paper, a venue behind a local mock) under contract, write a factory taking a
temporary directory and returning a :class:`Venue` built with the module constants below, and add it to
``VENUE_FACTORIES``. Expected numbers in these tests are worked out by hand from ``BOOK`` and those
constants.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from scalper.exec.adapter import ExecutionAdapter
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_writer import JournalWriter
from scalper.exec.journaled import JournaledVenue
from scalper.exec.orders import TRANSITIONS, Fill, InvalidTransition, Order, OrderStatus
from scalper.exec.passive_venue import PassiveSimulatedExchange
from scalper.exec.simulated import SimulatedExchange
from scalper.ingest.tickfile import KIND_BOOK, KIND_CLEAR
from scalper.lowlevel.book import ASK, BID, book_set, new_book
from scalper.risk.intent import OrderIntent, _approve

TICK = 0.5  # quote currency per tick
LOT = 0.1  # base units
FEE_BPS = 10.0
LATENCY_NS = 500_000
T0 = 1_700_000_000_000_000_000  # ns since the epoch

# (row, price tick, size in base units). Price = tick * 0.5. Sizes of 0.05 are below one lot.
BOOK_LEVELS = [
    (BID, 199, 1.0),  # 99.5
    (BID, 198, 2.0),  # 99.0
    (BID, 197, 0.05),  # 98.5, sub-lot
    (ASK, 200, 0.05),  # 100.0, sub-lot
    (ASK, 201, 0.25),  # 100.5, 2 whole lots
    (ASK, 202, 0.3),  # 101.0
    (ASK, 203, 5.0),  # 101.5
]

Book = tuple[np.ndarray, np.ndarray, np.ndarray]


def make_book() -> Book:
    px, sz, n = new_book(16)
    for row, tick, size in BOOK_LEVELS:
        book_set(px, sz, n, row, tick, size)
    return px, sz, n


@dataclass(frozen=True)
class Venue:
    """An adapter under test and the one thing the contract cannot do through the interface.

    ``drive(ts_ns, book)`` advances the venue to ``ts_ns`` with ``book`` as the market and returns
    the fills made meanwhile; ``close()`` releases what the adapter holds (run after each test).
    ``cancel_overtakes``: a cancel sent before its order arrives wins (the simulated exchange's
    optimistic rule); False where it travels behind the order, as at a real venue.
    """

    adapter: ExecutionAdapter
    drive: Callable[[int, Book], list[Fill]]
    close: Callable[[], None] = lambda: None
    cancel_overtakes: bool = True


def simulated_venue(tmp_path: Path) -> Venue:
    ex = SimulatedExchange(LATENCY_NS, FEE_BPS, TICK, LOT)
    return Venue(ex, lambda ts_ns, book: ex.on_time(ts_ns, *book))


def journaled_venue(tmp_path: Path) -> Venue:
    """The daemon's adapter: the simulated exchange behind a real journal writer on a file journal."""
    loop = asyncio.new_event_loop()
    writer = JournalWriter(FileJournal(tmp_path / "journal.jsonl"))
    loop.run_until_complete(writer.start())
    jv = JournaledVenue(SimulatedExchange(LATENCY_NS, FEE_BPS, TICK, LOT), writer)

    def drive(ts_ns: int, book: Book) -> list[Fill]:
        # The store answers before the market moves: every intent is durable by its decision time,
        # so held orders go out then (release never sends before that, nor steps the venue clock back).
        loop.run_until_complete(writer.flush())
        jv.release(jv.venue.now_ns)
        return jv.on_time(ts_ns, *book)

    def close() -> None:
        loop.run_until_complete(writer.close())
        loop.close()

    return Venue(jv, drive, close)


def passive_venue(tmp_path: Path) -> Venue:
    """The passive exchange (maker mode's venue): its book is replayed from events, here ``BOOK`` put down
    just before T0; the arrays ``drive`` passes are not read."""
    rows = [(T0 - 1, KIND_CLEAR, 0, 0, 0.0)] + [
        (T0 - 1, KIND_BOOK, 1 if row == BID else -1, tick, size) for row, tick, size in BOOK_LEVELS
    ]
    ts, kind, side, tick, size = (np.array(c) for c in zip(*rows, strict=True))
    ex = PassiveSimulatedExchange(
        ts.astype(np.int64),
        kind.astype(np.int8),
        side.astype(np.int8),
        tick.astype(np.int64),
        size.astype(np.float64),
        tick_size=TICK,
        lot_size=LOT,
        entry_latency_ns=LATENCY_NS,
        taker_fee_bps=FEE_BPS,
        maker_fee_bps=0.0,
    )
    return Venue(ex, lambda ts_ns, book: ex.on_time(ts_ns, *book), cancel_overtakes=False)


VENUE_FACTORIES = [
    pytest.param(simulated_venue, id="simulated"),
    pytest.param(journaled_venue, id="journaled"),
    pytest.param(passive_venue, id="passive"),
]


@pytest.fixture(params=VENUE_FACTORIES)
def venue(request, tmp_path):
    v = request.param(tmp_path)
    yield v
    v.close()


# --- the interface declares every call the core and the backtest driver make ---------------------

CORE_CALLS = {"submit", "cancel", "open_orders", "has_open_orders", "order", "next_wake_ns", "on_time"}


def test_interface_declares_every_call_the_core_makes():
    # The core and the backtest reach their venue as ``adapter.<call>(`` only through these names
    # (read as text: the test must not depend on those modules importing).
    import re

    import scalper.exec

    root = Path(scalper.exec.__file__).resolve().parents[1]
    called = set()
    for source in ("engine/core.py", "backtest/driver.py", "backtest/batched.py"):
        called |= set(re.findall(r"\badapter\.(\w+)\(", (root / source).read_text()))
    assert {"submit", "next_wake_ns", "on_time", "has_open_orders"} <= called <= CORE_CALLS, called
    assert all(callable(getattr(ExecutionAdapter, name, None)) for name in CORE_CALLS)
    assert {
        "_submit",
        "cancel",
        "open_orders",
        "order",
        "next_wake_ns",
        "on_time",
    } <= ExecutionAdapter.__abstractmethods__


@pytest.mark.parametrize("cls", [SimulatedExchange, JournaledVenue, PassiveSimulatedExchange])
def test_every_adapter_implements_the_interface(cls):
    assert issubclass(cls, ExecutionAdapter) and not inspect.isabstract(cls)


def intent(side: int, qty: float, limit_price: float, reason: str = "entry") -> OrderIntent:
    return OrderIntent(ts_ns=T0, side=side, qty=qty, limit_price=limit_price, is_exit=False, reason=reason)


def submit_and_arrive(venue: Venue, side: int, qty: float, limit_price: float) -> tuple[Order, list[Fill]]:
    order = venue.adapter.submit(_approve(intent(side, qty, limit_price), 1), T0)
    return order, venue.drive(T0 + LATENCY_NS, make_book())


def assert_fills(fills: list[Fill], expected: list[tuple[float, float, float]]) -> None:
    # pytest.approx does not recurse into a list of tuples, so compare fill by fill.
    assert len(fills) == len(expected)
    for f, (qty, price, fee) in zip(fills, expected, strict=True):
        assert (f.qty, f.price, f.fee) == pytest.approx((qty, price, fee))


# --- state machine (shared by every adapter) ----------------------------------------------------

LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in targets]
ILLEGAL = [(a, b) for a, b in itertools.product(OrderStatus, OrderStatus) if b not in TRANSITIONS[a]]


def bare_order(status: OrderStatus) -> Order:
    return Order(7, T0, 1, 1.0, 100.0, "entry", False, status=status)


def test_transition_table_matches_lifecycle():
    S = OrderStatus
    assert TRANSITIONS == {
        S.NEW: {S.ACCEPTED, S.REJECTED, S.EXPIRED},
        S.ACCEPTED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED},
        S.PARTIALLY_FILLED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED},
        S.FILLED: set(),
        S.CANCELED: set(),
        S.REJECTED: set(),
        S.EXPIRED: set(),
    }
    assert {s for s in S if s.is_terminal} == {S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}


@pytest.mark.parametrize(("from_status", "to_status"), LEGAL)
def test_transition_legal_move_changes_status(from_status, to_status):
    order = bare_order(from_status)
    order.transition(to_status)
    assert order.status is to_status


@pytest.mark.parametrize(("from_status", "to_status"), ILLEGAL)
def test_transition_illegal_move_raises_and_keeps_status(from_status, to_status):
    order = bare_order(from_status)
    with pytest.raises(InvalidTransition) as exc:
        order.transition(to_status)
    assert isinstance(exc.value, ValueError)
    err = exc.value
    assert (err.order_id, err.from_status, err.to_status) == (7, from_status, to_status)
    assert "7" in str(err) and from_status.name in str(err) and to_status.name in str(err)
    assert order.status is from_status


# --- approval ------------------------------------------------------------------------------------


def test_submit_raw_intent_raises_type_error(venue):
    with pytest.raises(TypeError, match="ApprovedOrder"):
        venue.adapter.submit(intent(1, 0.5, 101.5), T0)
    assert venue.adapter.open_orders() == []


def test_submit_approved_returns_new_order_copying_intent(venue):
    raw = OrderIntent(ts_ns=T0 - 10, side=-1, qty=0.3, limit_price=99.0, is_exit=True, reason="stop_loss")
    order = venue.adapter.submit(_approve(raw, 42), T0)
    assert order.status is OrderStatus.NEW
    assert (order.client_ts_ns, order.side, order.qty, order.limit_price) == (T0 - 10, -1, 0.3, 99.0)
    assert (order.is_exit, order.reason) == (True, "stop_loss")
    assert (order.filled_qty, order.avg_fill_price, order.fees) == (0.0, 0.0, 0.0)
    assert venue.adapter.order(order.order_id) is order
    assert venue.adapter.open_orders() == [order]


def test_submit_twice_assigns_distinct_ids(venue):
    a = venue.adapter.submit(_approve(intent(1, 0.1, 101.5), 1), T0)
    b = venue.adapter.submit(_approve(intent(1, 0.1, 101.5), 2), T0)
    assert a.order_id != b.order_id
    assert venue.adapter.open_orders() == [a, b]


def test_order_unknown_id_raises_key_error(venue):
    with pytest.raises(KeyError):
        venue.adapter.order(12345)


# --- IOC fills on the known book ------------------------------------------------------------------


def test_marketable_buy_walks_asks_best_first_and_fills(venue):
    order, fills = submit_and_arrive(venue, 1, 0.7, 101.5)
    # 100.0 holds less than a lot: skipped. 100.5: 2 lots; 101.0: 3 lots; 101.5: the last 2 lots.
    # fee = 10 bps * price * qty: 100.5*0.2*1e-3, 101.0*0.3*1e-3, 101.5*0.2*1e-3.
    assert_fills(fills, [(0.2, 100.5, 0.0201), (0.3, 101.0, 0.0303), (0.2, 101.5, 0.0203)])
    assert all(f.order_id == order.order_id and f.side == 1 for f in fills)
    assert all(f.ts_ns == T0 + LATENCY_NS and not f.is_maker and f.reason == "entry" for f in fills)
    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == pytest.approx(0.7)
    assert order.avg_fill_price == pytest.approx(101.0)  # (20.1 + 30.3 + 20.3) / 0.7
    assert order.fees == pytest.approx(0.0707)
    assert venue.adapter.open_orders() == []


def test_marketable_sell_walks_bids_best_first_and_fills(venue):
    order, fills = submit_and_arrive(venue, -1, 1.5, 99.0)
    assert_fills(fills, [(1.0, 99.5, 0.0995), (0.5, 99.0, 0.0495)])
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == pytest.approx(149.0 / 1.5)
    assert order.fees == pytest.approx(0.149)


@pytest.mark.parametrize("limit_price", [101.0, 101.2], ids=["on_tick", "between_ticks"])
def test_buy_larger_than_liquidity_in_limit_partially_fills_then_cancels(venue, limit_price):
    order, fills = submit_and_arrive(venue, 1, 1.0, limit_price)
    assert_fills(fills, [(0.2, 100.5, 0.0201), (0.3, 101.0, 0.0303)])
    assert order.status is OrderStatus.CANCELED
    assert order.filled_qty == pytest.approx(0.5)
    assert order.avg_fill_price == pytest.approx(100.8)  # (20.1 + 30.3) / 0.5
    assert order.fees == pytest.approx(0.0504)


def test_sell_skips_sub_lot_level_and_cancels_remainder(venue):
    order, fills = submit_and_arrive(venue, -1, 5.0, 98.5)
    assert_fills(fills, [(1.0, 99.5, 0.0995), (2.0, 99.0, 0.198)])
    assert order.status is OrderStatus.CANCELED
    assert order.filled_qty == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("side", "limit_price"),
    [(1, 99.9), (1, 100.0), (-1, 100.0)],
    ids=["buy_below_ask", "buy_reaches_only_sub_lot_level", "sell_above_bid"],
)
def test_no_liquidity_inside_limit_cancels_with_zero_fill(venue, side, limit_price):
    order, fills = submit_and_arrive(venue, side, 0.5, limit_price)
    assert fills == []
    assert order.status is OrderStatus.CANCELED
    assert (order.filled_qty, order.avg_fill_price, order.fees) == (0.0, 0.0, 0.0)


def test_quantity_off_lot_grid_is_rejected_on_arrival(venue):
    order, fills = submit_and_arrive(venue, 1, 0.15, 101.5)
    assert fills == []
    assert order.status is OrderStatus.REJECTED
    assert order.filled_qty == 0.0


# --- latency and cancel ---------------------------------------------------------------------------


def test_market_before_arrival_leaves_order_untouched(venue):
    order = venue.adapter.submit(_approve(intent(1, 0.2, 101.5), 1), T0)
    assert venue.drive(T0 + LATENCY_NS - 1, make_book()) == []
    assert order.status is OrderStatus.NEW
    assert venue.adapter.open_orders() == [order]
    fills = venue.drive(T0 + LATENCY_NS, make_book())
    assert_fills(fills, [(0.2, 100.5, 0.0201)])
    assert order.status is OrderStatus.FILLED


def test_cancel_before_arrival_cancels_and_never_fills(venue):
    if not venue.cancel_overtakes:
        pytest.skip("this venue's cancel travels behind the order: test_cancel_in_flight_travels_behind_the_order")
    order = venue.adapter.submit(_approve(intent(1, 0.2, 101.5), 1), T0)
    assert venue.adapter.cancel(order.order_id, T0 + 1) is True
    assert order.status is OrderStatus.CANCELED
    assert venue.adapter.open_orders() == []
    assert venue.drive(T0 + LATENCY_NS, make_book()) == []
    assert order.status is OrderStatus.CANCELED and order.filled_qty == 0.0


def test_cancel_in_flight_travels_behind_the_order(venue):
    if venue.cancel_overtakes:
        pytest.skip("this venue lets a cancel overtake its order: test_cancel_before_arrival_cancels_and_never_fills")
    order = venue.adapter.submit(_approve(intent(1, 0.2, 101.5), 1), T0)
    assert venue.adapter.cancel(order.order_id, T0 + 1) is True
    assert order.status is OrderStatus.NEW  # taken, not yet answered
    # The IOC arrives first and fills; the cancel, behind it, finds nothing left to cancel.
    assert_fills(venue.drive(T0 + LATENCY_NS + 1, make_book()), [(0.2, 100.5, 0.0201)])
    assert order.status is OrderStatus.FILLED
    assert venue.adapter.open_orders() == []


def test_cancel_unknown_or_terminal_order_returns_false(venue):
    assert venue.adapter.cancel(999, T0) is False
    order, _ = submit_and_arrive(venue, 1, 0.2, 101.5)
    assert order.status is OrderStatus.FILLED
    assert venue.adapter.cancel(order.order_id, T0 + LATENCY_NS) is False
    assert order.status is OrderStatus.FILLED
