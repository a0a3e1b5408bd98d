"""Bybit importer: v5 ``orderbook.{depth}.{symbol}`` JSON lines (plain or in a one-member .zip) -> schema-v1 tick data.

Bybit's order-book history files (and any recording of the public websocket topic) hold one
message per line (Bybit API v5 docs, "WebSocket Stream > Public > Orderbook",
https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook)::

    {"topic": "orderbook.500.XRPUSDT", "type": "snapshot" | "delta", "ts": <ms>,
     "data": {"s": <symbol>, "b": [[<price>, <size>], ...], "a": [...], "u": <update id>, "seq": <cross seq>},
     "cts": <ms>}

``ts`` is when Bybit's market-data system produced the message and ``cts`` when the matching
engine produced the book state, both ms since the Unix epoch, UTC. Prices (quote currency) and
sizes (base units or contracts) are decimal strings; sizes are the new total at the price and
``"0"`` deletes the level. :class:`BybitBookSync` holds the venue's sync rules.

Events: a snapshot becomes ``KIND_CLEAR`` (side 0, price 0, size 0) then one level per bid and
per ask, all ``FLAG_SNAPSHOT``; a delta becomes one level per bid and per ask. Bids come before
asks, each in file order; the last event of a message has ``FLAG_LAST_IN_MESSAGE``. ``ts_event``
is ``cts`` (``ts`` when a line has none) and ``ts_recv`` is ``ts``, ms -> ns. The instrument is
venue ``"BYBIT"``, symbol ``data.s``, source ``"bybit:<file name>"``.

Tick and lot size, unless given, are inferred from the first snapshot: Bybit prints every price
with the instrument's price scale and every size with its quantity scale (trailing zeros kept,
``"1.9530"``), so ``10**-d`` for the most decimals ``d`` seen is a grid every price (size) lies
on. It can be finer than the true tick (BTCUSDT prices print two decimals, its tick is 0.10);
pass ``tickSize``/``qtyStep`` from ``GET /v5/market/instruments-info`` when the exact value matters.
"""

from __future__ import annotations

import enum
import math
import zipfile
from array import array
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import orjson

from scalper.ingest.tickfile import (
    FLAG_LAST_IN_MESSAGE,
    FLAG_SNAPSHOT,
    KIND_BOOK,
    KIND_CLEAR,
    Instrument,
    TickData,
    validate,
)

VENUE = "BYBIT"
MESSAGE_TYPES = ("snapshot", "delta")

# Skip-reason keys of BybitImport.skipped.
BAD_JSON = "bad json"
MISSING_FIELD = "missing field"
BAD_FIELD = "bad field"
BAD_LEVEL = "bad level"
OFF_TICK_GRID = "off tick grid"
MIXED_SYMBOLS = "mixed symbols"
TIME_BACKWARDS = "time backwards"
EMPTY_SNAPSHOT = "empty first snapshot"

GRID_TOLERANCE_TICKS = 1e-6
_MAX_TICKS = 2**53
_NS_PER_MS = 1_000_000
_MAX_MS = int(np.iinfo(np.int64).max) // _NS_PER_MS
_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "integer"}


class BybitFormatError(ValueError):
    """A Bybit order-book file breaks the format; the message names the file, the 1-based line and the reason."""


class SyncAction(enum.Enum):
    """What :meth:`BybitBookSync.on_message` says to do with a message."""

    RESET = "reset"  # replace the book with the message
    APPLY = "apply"  # apply the delta
    GAP = "gap"  # u broke the chain: the book is out of sync until the next snapshot
    WAIT = "wait"  # out of sync: drop the delta


class BybitBookSync:
    """Bybit v5 order-book sync rules for one topic (``orderbook.{depth}.{symbol}``).

    Transcribed from Bybit's v5 orderbook docs ("Process snapshot/delta" and the ``u`` field):

    1. After subscribing, the first message is a ``snapshot``: reset the local book to it.
    2. ``delta`` messages follow on every change; apply each (absolute sizes, size 0 deletes).
    3. A new ``snapshot`` (Bybit re-sends one after a problem on its side) resets the book.
    4. ``u`` (update id) is "always in sequence": each delta has ``u`` = previous ``u`` + 1.
    5. "Occasionally, you'll receive "u"=1, which is a snapshot data due to the restart of the
       service": a message with ``u == 1`` resets the book whatever its ``type``.
    6. A delta with ``u`` != previous ``u`` + 1 means messages were lost: a live client
       resubscribes; in a file the book stays out of sync until the next snapshot.

    Attributes
    ----------
    last_u : int or None
        ``u`` of the last message applied; None while out of sync (before the first snapshot or after a gap).
    """

    def __init__(self) -> None:
        self.last_u: int | None = None

    @staticmethod
    def is_reset(message_type: str, u: int) -> bool:
        """Return True when a message replaces the book (a snapshot, or ``u == 1``)."""
        return message_type == "snapshot" or u == 1

    def on_message(self, message_type: str, u: int) -> SyncAction:
        """Advance the sync state with a message of ``message_type`` and update id ``u``; return the action."""
        if self.is_reset(message_type, u):
            self.last_u = u
            return SyncAction.RESET
        if self.last_u is None:
            return SyncAction.WAIT
        if u != self.last_u + 1:
            self.last_u = None
            return SyncAction.GAP
        self.last_u = u
        return SyncAction.APPLY


@dataclass(frozen=True)
class BybitImport:
    """Result of :func:`import_bybit`.

    Attributes
    ----------
    data : TickData
        The book events, schema v1, validated.
    lines : int
        Lines in the file.
    snapshots, deltas : int
        Messages that reset the book / deltas applied to it.
    gaps : int
        Breaks of the ``u`` chain (only with ``skip_bad``; otherwise the first one raises).
    dropped_deltas : int
        Deltas not applied because the book was out of sync (the breaking delta, those after it
        until the next snapshot, and with ``skip_bad`` those before the first snapshot).
    skipped : dict[str, int]
        Malformed lines skipped per reason key (``BAD_JSON``, ``BAD_LEVEL``, ...); empty unless ``skip_bad``.
    """

    data: TickData
    lines: int
    snapshots: int
    deltas: int
    gaps: int
    dropped_deltas: int
    skipped: dict[str, int]


class _BadLine(Exception):
    # A rejected line: key is what skip_bad counts it under, reason goes into the error message.
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class _Message:
    """One parsed line; ``values`` is [price, size, price, size, ...] of its bids, then its asks."""

    type: str
    u: int
    symbol: str
    ts_ms: int
    cts_ms: int
    n_bids: int
    values: list[float]
    decimals: tuple[int, int] | None  # most price and size decimals, for a message that resets the book


# Stands in for a line that did not parse, so that every per-line column keeps one entry per line.
_NO_MESSAGE = _Message("", 0, "", 0, 0, 0, [], None)


@dataclass(frozen=True)
class _Scan:
    """All lines parsed, with the levels of every line in two flat arrays.

    Per line ``i``: ``bad[i]`` (None if it parsed), ``symbol[i]``, and int64 arrays ``u``,
    ``ts_ms``, ``cts_ms`` and level bounds ``lo``/``mid``/``hi``: levels ``lo:mid`` are its bids
    and ``mid:hi`` its asks. ``is_reset[i]``: the line replaces the book (snapshot or ``u == 1``).
    ``decimals`` maps such lines to their most price and size decimals.
    """

    bad: list[_BadLine | None]
    type: list[str]
    u: np.ndarray
    is_reset: np.ndarray
    symbol: list[str]
    ts_ms: np.ndarray
    cts_ms: np.ndarray
    lo: np.ndarray
    mid: np.ndarray
    hi: np.ndarray
    decimals: dict[int, tuple[int, int]]
    price: np.ndarray  # float64 per level, quote currency
    size: np.ndarray  # float64 per level

    def level_problems(self, is_bad: np.ndarray, key: str, what: str) -> dict[int, _BadLine]:
        """Return {line index: problem} for the first level flagged in ``is_bad`` (bool per level) of each line."""
        levels = np.flatnonzero(is_bad)
        lines, first = np.unique(np.searchsorted(self.hi, levels, side="right"), return_index=True)
        problems = {}
        for line, k in zip(lines.tolist(), levels[first].tolist(), strict=True):
            name, j = ("data.b", k - self.lo[line]) if k < self.mid[line] else ("data.a", k - self.mid[line])
            level = [float(self.price[k]), float(self.size[k])]
            problems[line] = _BadLine(key, f"{name}[{j}] {level} {what}")
        return problems


def import_bybit(
    path: str | Path,
    tick_size: float | None = None,
    lot_size: float | None = None,
    skip_bad: bool = False,
) -> BybitImport:
    """Import a Bybit v5 order-book JSON-lines file (or a .zip holding one) as schema-v1 events.

    See the module docstring for the format, the events and the tick/lot inference.

    Parameters
    ----------
    path : str or Path
        The file; a name ending in ``.zip`` is read as a zip archive with exactly one file.
    tick_size : float, optional
        Price increment, quote currency; every book price must lie on its grid (within
        ``GRID_TOLERANCE_TICKS``). Default: inferred from the first snapshot's price decimals.
    lot_size : float, optional
        Size increment (base units or contracts). Default: inferred from the first snapshot's size decimals.
    skip_bad : bool
        Skip malformed lines (counted in :attr:`BybitImport.skipped`) and ``u`` gaps (counted in
        :attr:`BybitImport.gaps`; deltas are dropped until the next snapshot) instead of raising.

    Returns
    -------
    BybitImport
        ``data`` holds int64 ``ts_event``/``ts_recv`` in ns since the epoch, UTC, prices in
        quote currency and sizes in the venue's size unit.

    Raises
    ------
    BybitFormatError
        Always for an unreadable zip or one without exactly one file, an empty file, no valid
        line, or no snapshot to infer a missing tick or lot size from. Unless ``skip_bad``, for
        the first bad line, naming file, 1-based line and reason: invalid JSON or not an object;
        a missing field (``type``, ``ts``, ``data``, ``data.s``, ``data.b``, ``data.a``,
        ``data.u``); a field of the wrong type or value (``type`` not snapshot/delta,
        ``ts``/``cts`` not integer ms, ``u`` not a positive integer); a level that is not a
        ``[price, size]`` pair of decimal strings with a finite price > 0 and size >= 0; a price
        off the tick grid; a first snapshot without levels when a tick or lot size is to be
        inferred; a symbol unlike the first valid line's; ``cts`` (or ``ts``) before an earlier
        line's; a delta before the first snapshot; or a delta whose ``u`` is not the previous
        ``u`` + 1 (the message names both ids).
    ValueError
        If ``tick_size`` or ``lot_size`` is given and not a positive finite number.
    """
    path = Path(path)
    for name, value in (("tick_size", tick_size), ("lot_size", lot_size)):
        if value is not None:
            _check_step(name, value)
    where, lines = _read_lines(path)
    reader = _Reader(where, _scan(lines), tick_size, lot_size, skip_bad)
    for i in range(len(lines)):
        reader.feed(i)
    return reader.finish(path)


def _check_step(name: str, value: float) -> None:
    try:
        is_valid = not isinstance(value, bool) and math.isfinite(value) and value > 0
    except TypeError:
        is_valid = False
    if not is_valid:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _read_lines(path: Path) -> tuple[str, list[bytes]]:
    """Return the name to put in messages and the file's lines (without the final empty one)."""
    where = str(path)
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise BybitFormatError(f"{path}: zip holds {len(members)} files, expected exactly one")
                where = f"{path}!{members[0].filename}"
                raw = archive.read(members[0])
        # zipfile raises NotImplementedError for a compression method it cannot read.
        except (zipfile.BadZipFile, NotImplementedError, EOFError) as exc:
            raise BybitFormatError(f"{where}: not a readable zip file ({exc})") from None
    else:
        raw = path.read_bytes()
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if not lines:
        raise BybitFormatError(f"{where}: empty file")
    return where, lines


def _field(obj: dict, key: str, kind: type, name: str):
    if key not in obj:
        raise _BadLine(MISSING_FIELD, f"missing field {name}")
    value = obj[key]
    if type(value) is not kind:
        raise _BadLine(BAD_FIELD, f"field {name} {value!r} is not a JSON {_JSON_NAMES[kind]}")
    return value


def _ms(obj: dict, key: str) -> int:
    value = _field(obj, key, int, key)
    if not 0 <= value <= _MAX_MS:
        raise _BadLine(BAD_FIELD, f"field {key} {value} is not a time in ms (0 to {_MAX_MS})")
    return value


def _levels(data: dict, key: str) -> tuple[list[str], list[float]]:
    """Return data[key] flattened to [price, size, price, size, ...], as strings and as floats."""
    name = f"data.{key}"
    raw = _field(data, key, list, name)
    # set(map(...)) and map(float, ...) loop in C, not in bytecode once per level: snapshots hold hundreds.
    if set(map(type, raw)) <= {list} and set(map(len, raw)) <= {2}:
        flat = list(chain.from_iterable(raw))
        if set(map(type, flat)) <= {str}:
            try:
                return flat, list(map(float, flat))
            except ValueError:
                pass
    i = _first_bad_level(raw)
    raise _BadLine(BAD_LEVEL, f"{name}[{i}] {raw[i]!r} is not a [price, size] pair of decimal strings")


def _first_bad_level(raw: list) -> int:
    # Only on the error path: find the level that spoiled the fast conversion.
    for i, level in enumerate(raw):
        if not (type(level) is list and len(level) == 2 and all(type(x) is str for x in level)):
            return i
        try:
            float(level[0]), float(level[1])
        except ValueError:
            return i
    raise AssertionError("no bad level in a list that failed to convert")


def _decimals(text: list[str]) -> int:
    """Return the most digits after the decimal point among ``text`` (0 if none has a point)."""
    return max((len(t) - t.find(".") - 1 for t in text if "." in t), default=0)


def _parse(raw: bytes) -> _Message:
    """Parse one line.

    Raises
    ------
    _BadLine
        Naming the first problem found.
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadLine(BAD_JSON, f"not valid JSON ({exc})") from None
    if type(obj) is not dict:
        raise _BadLine(BAD_JSON, "not a JSON object")
    message_type = _field(obj, "type", str, "type")
    if message_type not in MESSAGE_TYPES:
        raise _BadLine(BAD_FIELD, f"field type {message_type!r} is not 'snapshot' or 'delta'")
    ts_ms = _ms(obj, "ts")
    cts_ms = _ms(obj, "cts") if "cts" in obj else ts_ms
    data = _field(obj, "data", dict, "data")
    symbol = _field(data, "s", str, "data.s")
    u = _field(data, "u", int, "data.u")
    if u < 1:
        raise _BadLine(BAD_FIELD, f"field data.u {u} is not a positive update id")
    bid_text, bids = _levels(data, "b")
    ask_text, asks = _levels(data, "a")
    decimals = None
    if BybitBookSync.is_reset(message_type, u):
        text = bid_text + ask_text
        decimals = (_decimals(text[0::2]), _decimals(text[1::2]))
    return _Message(message_type, u, symbol, ts_ms, cts_ms, len(bids) // 2, bids + asks, decimals)


def _scan(lines: list[bytes]) -> _Scan:
    """Parse every line; a level that is not finite with price > 0 and size >= 0 makes its line bad."""
    bad: list[_BadLine | None] = []
    types, us, symbols, ts_ms, cts_ms, n_bids, hi = [], [], [], [], [], [], []
    values = array("d")
    decimals = {}
    for i, raw in enumerate(lines):
        try:
            msg = _parse(raw)
        except _BadLine as problem:
            msg = _NO_MESSAGE
            bad.append(problem)
        else:
            bad.append(None)
        types.append(msg.type)
        us.append(msg.u)
        symbols.append(msg.symbol)
        ts_ms.append(msg.ts_ms)
        cts_ms.append(msg.cts_ms)
        n_bids.append(msg.n_bids)
        values.extend(msg.values)
        hi.append(len(values) // 2)
        if msg.decimals is not None:
            decimals[i] = msg.decimals
    hi_arr = np.array(hi, dtype=np.int64)
    lo = np.concatenate([np.zeros(1, dtype=np.int64), hi_arr[:-1]])
    u = np.array(us, dtype=np.int64)
    levels = np.frombuffer(values, dtype=np.float64).reshape(-1, 2)
    scan = _Scan(
        bad=bad,
        type=types,
        u=u,
        is_reset=np.array([t == "snapshot" for t in types], dtype=bool) | (u == 1),
        symbol=symbols,
        ts_ms=np.array(ts_ms, dtype=np.int64),
        cts_ms=np.array(cts_ms, dtype=np.int64),
        lo=lo,
        mid=lo + np.array(n_bids, dtype=np.int64),
        hi=hi_arr,
        decimals=decimals,
        price=np.ascontiguousarray(levels[:, 0]),
        size=np.ascontiguousarray(levels[:, 1]),
    )
    price, size = scan.price, scan.size
    is_bad = ~(np.isfinite(price) & np.isfinite(size) & (price > 0) & (size >= 0))
    for line, reason in scan.level_problems(is_bad, BAD_LEVEL, "needs a finite price > 0 and size >= 0").items():
        bad[line] = reason
    return scan


def _off_grid(price: np.ndarray, tick_size: float) -> np.ndarray:
    # Beyond 2**53 ticks float64 no longer holds every integer, so such prices cannot be on the grid.
    with np.errstate(over="ignore", invalid="ignore"):
        ticks = price / tick_size
        return ~(np.abs(ticks - np.rint(ticks)) <= GRID_TOLERANCE_TICKS) | ~(ticks <= _MAX_TICKS)


class _Reader:
    """Walk the scanned lines in order: reject bad ones, keep the sync state, note what to emit."""

    def __init__(
        self, where: str, scan: _Scan, tick_size: float | None, lot_size: float | None, skip_bad: bool
    ) -> None:
        self.where = where
        self.scan = scan
        self.skip_bad = skip_bad
        self.lot_size = None if lot_size is None else float(lot_size)
        self.tick_size: float | None = None
        self.off_grid: dict[int, _BadLine] = {}
        if tick_size is not None:
            self._set_tick_size(float(tick_size))
        self.sync = BybitBookSync()
        self.symbol: str | None = None
        self.last_cts: tuple[int, int] | None = None  # (cts ms, line index) of the last accepted line
        self.counts: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.emitted: list[int] = []  # line indices whose levels become events
        self.emitted_reset: list[bool] = []

    def _set_tick_size(self, tick_size: float) -> None:
        self.tick_size = tick_size
        scan = self.scan
        what = f"price is not a multiple of tick_size {tick_size!r} below {_MAX_TICKS} ticks"
        self.off_grid = scan.level_problems(_off_grid(scan.price, tick_size), OFF_TICK_GRID, what)

    def _error(self, i: int, reason: str) -> BybitFormatError:
        return BybitFormatError(f"{self.where}: line {i + 1}: {reason}")

    def feed(self, i: int) -> None:
        """Handle line index ``i``."""
        problem = self.scan.bad[i] or self._check(i)
        if problem is not None:
            if not self.skip_bad:
                raise self._error(i, problem.reason)
            self.skipped[problem.key] += 1
            return
        scan = self.scan
        if scan.is_reset[i] and (self.tick_size is None or self.lot_size is None):
            price_decimals, size_decimals = scan.decimals[i]
            if self.tick_size is None:
                self._set_tick_size(float(f"1e-{price_decimals}"))
            if self.lot_size is None:
                self.lot_size = float(f"1e-{size_decimals}")
        self.symbol = scan.symbol[i]
        self.last_cts = (int(scan.cts_ms[i]), i)
        last_u = self.sync.last_u
        action = self.sync.on_message(scan.type[i], int(scan.u[i]))
        if action is SyncAction.RESET or action is SyncAction.APPLY:
            self.counts["snapshots" if action is SyncAction.RESET else "deltas"] += 1
            self.emitted.append(i)
            self.emitted_reset.append(action is SyncAction.RESET)
        else:
            self._drop(i, action, last_u)

    def _check(self, i: int) -> _BadLine | None:
        """Return why a parsed line is rejected: another symbol, time going backwards, a price off the grid."""
        scan = self.scan
        if self.symbol is not None and scan.symbol[i] != self.symbol:
            reason = f"symbol {scan.symbol[i]!r} differs from {self.symbol!r} of the first valid line"
            return _BadLine(MIXED_SYMBOLS, reason)
        if self.last_cts is not None and scan.cts_ms[i] < self.last_cts[0]:
            ms, line = self.last_cts
            return _BadLine(TIME_BACKWARDS, f"cts {scan.cts_ms[i]} ms goes backwards (line {line + 1} has {ms} ms)")
        needs_steps = self.tick_size is None or self.lot_size is None
        if needs_steps and scan.is_reset[i] and scan.lo[i] == scan.hi[i]:
            reason = "the first snapshot has no levels to infer tick_size and lot_size from; pass them"
            return _BadLine(EMPTY_SNAPSHOT, reason)
        # With no tick size yet the first snapshot defines the grid, and deltas before it are dropped.
        return self.off_grid.get(i)

    def _drop(self, i: int, action: SyncAction, last_u: int | None) -> None:
        self.counts["dropped_deltas"] += 1
        u = int(self.scan.u[i])
        if action is SyncAction.GAP:
            self.counts["gaps"] += 1
            if not self.skip_bad:
                assert last_u is not None  # a GAP breaks a chain, so there was a previous u
                raise self._error(
                    i,
                    f"update id u={u} does not follow u={last_u} (expected {last_u + 1}); "
                    "messages were lost, the book is out of sync until the next snapshot",
                )
        elif self.counts["snapshots"] == 0 and not self.skip_bad:
            raise self._error(i, f"delta (u={u}) before the first snapshot; the book is unknown")

    def finish(self, path: Path) -> BybitImport:
        if self.symbol is None:
            raise BybitFormatError(f"{self.where}: no valid line to take the symbol from")
        if self.tick_size is None or self.lot_size is None:
            raise BybitFormatError(f"{self.where}: no snapshot to infer tick_size and lot_size from; pass them")
        instrument = Instrument(VENUE, self.symbol, self.tick_size, self.lot_size, f"bybit:{path.name}")
        lines = np.array(self.emitted, dtype=np.int64)
        data = TickData(instrument, *_events(self.scan, lines, np.array(self.emitted_reset, dtype=bool)))
        validate(data, self.where)
        return BybitImport(
            data=data,
            lines=len(self.scan.bad),
            snapshots=self.counts["snapshots"],
            deltas=self.counts["deltas"],
            gaps=self.counts["gaps"],
            dropped_deltas=self.counts["dropped_deltas"],
            skipped=dict(self.skipped),
        )


def _events(scan: _Scan, lines: np.ndarray, is_reset: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return ts_event, ts_recv, kind, side, price, size, flags for the messages on ``lines``.

    A reset message is a clear then its levels; every other message is its levels; bids first.
    """
    lo, mid, hi = scan.lo[lines], scan.mid[lines], scan.hi[lines]
    counts = hi - lo + is_reset
    msg = np.repeat(np.arange(lines.shape[0]), counts)
    pos = np.arange(msg.shape[0]) - (np.cumsum(counts) - counts)[msg]
    is_clear = is_reset[msg] & (pos == 0)
    # Clears read index -1, the zero appended to the level arrays.
    level = np.where(is_clear, -1, lo[msg] + pos - is_reset[msg])
    price = np.append(scan.price, 0.0)[level]
    size = np.append(scan.size, 0.0)[level]
    side = np.where(is_clear, 0, np.where(level < mid[msg], 1, -1)).astype(np.int8)
    kind = np.where(is_clear, KIND_CLEAR, KIND_BOOK).astype(np.uint8)
    flags = np.where(is_reset[msg], FLAG_SNAPSHOT, 0) | np.where(pos == counts[msg] - 1, FLAG_LAST_IN_MESSAGE, 0)
    ts_event = scan.cts_ms[lines][msg] * _NS_PER_MS
    ts_recv = scan.ts_ms[lines][msg] * _NS_PER_MS
    return ts_event, ts_recv, kind, side, price, size, flags.astype(np.uint8)
