"""Small builders for hand-made tick data in tests."""

from __future__ import annotations

import numpy as np

from scalper.engine.config import EngineConfig
from scalper.features.kernels import PRE_MASK, step
from scalper.ingest.tickfile import (
    FLAG_LAST_IN_MESSAGE,
    FLAG_SNAPSHOT,
    KIND_BOOK,
    KIND_CLEAR,
    KIND_TRADE,
    Instrument,
    TickData,
)
from scalper.models.config import LabelsConfig

INSTRUMENT = Instrument(venue="TEST", symbol="TST", tick_size=0.01, lot_size=1.0, source="test")
# The instrument a random walk is labelled with to train "ETH" models, and another with the same tick.
ETH_LIKE = Instrument("BINANCE_USDM", "ETHUSDT", 0.01, 0.001, "test")
BTC_SAME_TICK = Instrument("BINANCE_USDM", "BTCUSDT", 0.01, 0.001, "test")
# The config those models are trained with: the default one without a dead zone.
ETH_LIKE_CFG = EngineConfig(labels=LabelsConfig(dead_zone_ticks=0.0))
T0 = 1_700_000_000_000_000_000


class TickBuilder:
    """Append messages (lists of events sharing a timestamp) and build a TickData."""

    def __init__(self, instrument: Instrument = INSTRUMENT) -> None:
        self.instrument = instrument
        self.rows: list[tuple[int, int, int, float, float, int]] = []

    def snapshot(self, ts: int, bids: list[tuple[int, float]], asks: list[tuple[int, float]]) -> TickBuilder:
        """Add a clear and a snapshot of (price_tick, size) levels."""
        tick = self.instrument.tick_size
        self.rows.append((ts, KIND_CLEAR, 0, 0.0, 0.0, FLAG_SNAPSHOT))
        levels = [(1, p, q) for p, q in bids] + [(-1, p, q) for p, q in asks]
        for j, (s, p, q) in enumerate(levels):
            last = FLAG_LAST_IN_MESSAGE if j == len(levels) - 1 else 0
            self.rows.append((ts, KIND_BOOK, s, p * tick, q, FLAG_SNAPSHOT | last))
        return self

    def message(self, ts: int, *events: tuple[int, int, int, float]) -> TickBuilder:
        """Add one message of (kind, side, price_tick, size) events."""
        tick = self.instrument.tick_size
        for j, (kind, side, p, q) in enumerate(events):
            last = FLAG_LAST_IN_MESSAGE if j == len(events) - 1 else 0
            self.rows.append((ts, kind, side, p * tick, q, last))
        return self

    def level(self, ts: int, side: int, price_tick: int, size: float) -> TickBuilder:
        return self.message(ts, (KIND_BOOK, side, price_tick, size))

    def trade(self, ts: int, side: int, price_tick: int, size: float) -> TickBuilder:
        return self.message(ts, (KIND_TRADE, side, price_tick, size))

    def build(self) -> TickData:
        cols = list(zip(*self.rows, strict=True)) if self.rows else [[]] * 6
        ts = np.array(cols[0], dtype=np.int64)
        return TickData(
            instrument=self.instrument,
            ts_event=ts,
            ts_recv=ts.copy(),
            kind=np.array(cols[1], dtype=np.uint8),
            side=np.array(cols[2], dtype=np.int8),
            price=np.array(cols[3], dtype=np.float64),
            size=np.array(cols[4], dtype=np.float64),
            flags=np.array(cols[5], dtype=np.uint8),
        )


def random_walk_ticks(seed: int, n_messages: int, mean_gap_ns: int = 50_000_000) -> TickData:
    """Return a random but always valid 5-level book stream with trades (for parity and property tests)."""
    rng = np.random.default_rng(seed)
    b = TickBuilder()
    t = T0
    bid = 10_000
    b.snapshot(t, [(bid - i, 10.0 + i) for i in range(5)], [(bid + 2 + i, 10.0 + i) for i in range(5)])
    book = {1: {bid - i: 10.0 + i for i in range(5)}, -1: {bid + 2 + i: 10.0 + i for i in range(5)}}
    for _ in range(n_messages):
        t += int(rng.exponential(mean_gap_ns)) + 1
        u = rng.random()
        best_b, best_a = max(book[1]), min(book[-1])
        if u < 0.2:
            s = int(rng.choice([-1, 1]))
            b.trade(t, s, best_a if s > 0 else best_b, float(rng.integers(1, 5)))
        elif u < 0.6:
            s = int(rng.choice([-1, 1]))
            side_book = book[s]
            # Improve the quote when the spread is wide, so the book keeps a realistic spread.
            offset = -1 if best_a - best_b > 3 else int(rng.integers(0, 5))
            price = (best_b - offset) if s > 0 else (best_a + offset)
            if (s > 0 and price >= best_a) or (s < 0 and price <= best_b):
                continue
            q = float(rng.integers(1, 30))
            side_book[price] = q
            b.level(t, s, price, q)
        else:
            s = int(rng.choice([-1, 1]))
            side_book = book[s]
            if len(side_book) <= 2:
                continue
            price = int(rng.choice(list(side_book)))
            del side_book[price]
            b.level(t, s, price, 0.0)
    return b.build()


def books_at_message_ends(data: TickData, capacity: int):
    """Replay ``data`` through the numba book; yield ``(row, kind, {(side, tick): size})`` at every message end.

    ``side`` is +1 bid / -1 ask, as in the tick file; importer property tests compare these dict
    books with a dict replay of the venue's own messages.
    """
    from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, KIND_BOOK, KIND_CLEAR
    from scalper.lowlevel.book import book_clear, book_set, new_book, side_index

    px, sz, n = new_book(capacity)
    ticks = data.price_tick
    for i in range(len(data)):
        kind = int(data.kind[i])
        if kind == KIND_CLEAR:
            book_clear(n)
        elif kind == KIND_BOOK:
            book_set(px, sz, n, side_index(int(data.side[i])), int(ticks[i]), float(data.size[i]))
        if data.flags[i] & FLAG_LAST_IN_MESSAGE:
            book = {(1 if s == 0 else -1, int(px[s, k])): float(sz[s, k]) for s in (0, 1) for k in range(int(n[s]))}
            yield i, kind, book


def step_events(state, ts, kind, side, ticks, size, flags) -> None:
    """Feed event columns one by one through the ``step`` kernel into ``state`` (a FeatureState),
    stepping past every decision or wake-up code: a consumer that takes no decisions."""
    arrays = state.arrays()
    for i in range(len(ticks)):
        while (
            step(
                *arrays,
                int(ts[i]),
                int(kind[i]),
                int(side[i]),
                int(ticks[i]),
                float(size[i]),
                int(flags[i]),
                state.feat,
            )
            & PRE_MASK
        ):
            pass
