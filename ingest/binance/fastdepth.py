"""Raw depthUpdate frame -> tick-file event columns in one numba call (the live hot path).

The general parser (:mod:`scalper.ingest.binance.parse`: orjson, then Python floats, then arrays)
builds Python objects for every field and level, which costs more per frame than the inference
budget (figures: BENCHMARKS.md). This scanner reads the bytes of the common frame shape, a
combined-stream ``{"stream": ..., "data": {"e": "depthUpdate", ...}}`` or the bare event, and writes
schema-v1 book events with prices already in integer ticks (``price_tick``), exactly as
:meth:`EventBuffer.append_diff` followed by ``rint(price / tick_size)`` would.

It accepts only what it can convert exactly and never raises: a frame of another kind, any
malformed or unusual input (escapes, exponents, signs, duplicate keys, a zero price, a price off the
tick grid or outside the price band in ``header[H_BAND_LO:H_BAND_HI + 1]``, more levels than the
buffers hold) returns :data:`NOT_HANDLED` (-1), and the caller hands the frame to
:func:`~scalper.ingest.binance.parse.parse_message`, which names the field and the reason of any error.
So nothing is dropped or mis-parsed silently; the slow path is the reference
(``tests/realdata/test_fastdepth_realdata.py`` compares both on every recorded depthUpdate).

Quantities: a decimal ``m / 10**d`` with ``m < 2**53`` and ``d <= 22`` is one correctly rounded
division of two exact doubles, the same float64 as Python's ``float(text)``.
"""

from __future__ import annotations

import numpy as np

from scalper.ingest.binance.levels import NO_BAND
from scalper.ingest.binance.sequencer import continue_ids
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, KIND_BOOK
from scalper.lowlevel.jit import kernel

NOT_HANDLED = -1

# Header slots.
H_EVENT_MS = 0  # E
H_TRANSACTION_MS = 1  # T, -1 when absent
H_FIRST_ID = 2  # U
H_FINAL_ID = 3  # u
H_PREV_FINAL_ID = 4  # pu, -1 when absent (spot)
H_EVENTS = 5  # book events written
H_BAND_LO = 6  # input: lowest price accepted, ticks (levels.NO_BAND until a book gives a mid)
H_BAND_HI = 7  # input: highest price accepted, ticks
N_HEADER = 8

_MAX_TIME_MS = (2**63 - 1) // 1_000_000
_MAX_EXACT = 1 << 53
_POW10 = np.array([10.0**k for k in range(23)])

_QUOTE, _COLON, _COMMA, _LBRACE, _RBRACE, _LBRACK, _RBRACK, _DOT, _BACKSLASH = 34, 58, 44, 123, 125, 91, 93, 46, 92
_DEPTH_UPDATE = np.frombuffer(b"depthUpdate", dtype=np.uint8)
_STREAM = np.frombuffer(b"stream", dtype=np.uint8)
_DATA = np.frombuffer(b"data", dtype=np.uint8)


def tick_decimal(tick_size: float) -> tuple[int, int]:
    """Return ``(m, k)`` with ``tick_size == m / 10**k`` exactly in decimal (0.01 -> (1, 2), 0.5 -> (5, 1)).

    Raises
    ------
    ValueError
        If ``tick_size`` is not positive or needs more than 12 decimals.
    """
    if not tick_size > 0.0:
        raise ValueError(f"tick_size must be > 0, got {tick_size}")
    for k in range(13):
        m = round(tick_size * 10**k)
        if m >= 1 and abs(m / 10**k - tick_size) <= 1e-12 * tick_size:
            return m, k
    raise ValueError(f"tick_size {tick_size!r} has more than 12 decimals")


@kernel
def _ws(b, i):
    while i < b.shape[0] and (b[i] == 32 or b[i] == 9 or b[i] == 10 or b[i] == 13):
        i += 1
    return i


@kernel
def _string_end(b, i):
    # b[i] is the opening quote; return the index of the closing quote, or -1 (escape or no end).
    j = i + 1
    while j < b.shape[0]:
        c = b[j]
        if c == _QUOTE:
            return j
        if c == _BACKSLASH or c < 32:
            return -1
        j += 1
    return -1


@kernel
def _uint(b, i):
    # Digits at b[i:]; returns (value, next index), next == -1 when there is no plain integer.
    v = 0
    j = i
    while j < b.shape[0] and 48 <= b[j] <= 57 and j - i < 18:
        v = v * 10 + (b[j] - 48)
        j += 1
    if j == i or (j < b.shape[0] and (48 <= b[j] <= 57 or b[j] == _DOT or b[j] == 101 or b[j] == 69)):
        return 0, -1
    if b[i] == 48 and j - i > 1:
        return 0, -1  # a leading zero: not a JSON number (orjson refuses "00")
    return v, j


@kernel
def _decimal(b, i):
    # A quoted plain decimal "123.450" at b[i]; returns (mantissa, decimals, next index) or next == -1.
    if i >= b.shape[0] or b[i] != _QUOTE:
        return 0, 0, -1
    j = i + 1
    m = 0
    digits = 0
    decimals = -1
    while j < b.shape[0]:
        c = b[j]
        if 48 <= c <= 57:
            m = m * 10 + (c - 48)
            digits += 1
            if decimals >= 0:
                decimals += 1
        elif c == _DOT and decimals < 0 and digits > 0:
            decimals = 0
        else:
            break
        j += 1
    if j >= b.shape[0] or b[j] != _QUOTE or digits == 0 or digits > 18 or decimals == 0:
        return 0, 0, -1
    return m, max(decimals, 0), j + 1


@kernel
def _levels(b, i, side, tick_m, tick_k, lo, hi, at, ts_side, tick_out, size_out):
    # The [["p","q"], ...] array at b[i]; writes levels from row `at`; returns (rows written, next) or next == -1.
    cap = tick_out.shape[0]
    if i >= b.shape[0] or b[i] != _LBRACK:
        return 0, -1
    i = _ws(b, i + 1)
    k = at
    if i < b.shape[0] and b[i] == _RBRACK:
        return 0, i + 1
    while True:
        if i >= b.shape[0] or b[i] != _LBRACK or k >= cap:
            return 0, -1
        pm, pd, i = _decimal(b, _ws(b, i + 1))
        if i < 0 or pm == 0:
            return 0, -1
        i = _ws(b, i)
        if i >= b.shape[0] or b[i] != _COMMA:
            return 0, -1
        qm, qd, i = _decimal(b, _ws(b, i + 1))
        if i < 0 or qm >= _MAX_EXACT or qd > 22:
            return 0, -1
        i = _ws(b, i)
        if i >= b.shape[0] or b[i] != _RBRACK:
            return 0, -1
        # price = pm / 10**pd; ticks = price / (tick_m / 10**tick_k), exactly or not at all.
        if pd <= tick_k:
            num = pm
            for _ in range(tick_k - pd):
                num *= 10
                if num > 1 << 62:
                    return 0, -1
            if num % tick_m != 0:
                return 0, -1
            ticks = num // tick_m
        else:
            den = tick_m
            for _ in range(pd - tick_k):
                den *= 10
            if pm % den != 0:
                return 0, -1
            ticks = pm // den
        if ticks < lo or ticks > hi:
            return 0, -1
        tick_out[k] = ticks
        size_out[k] = qm / _POW10[qd]
        ts_side[k] = side
        k += 1
        i = _ws(b, i + 1)
        if i < b.shape[0] and b[i] == _COMMA:
            i = _ws(b, i + 1)
            continue
        if i < b.shape[0] and b[i] == _RBRACK:
            return k - at, i + 1
        return 0, -1


@kernel
def _key(b, i, name):
    # True when the quoted key at b[i] equals `name` (bytes as uint8 array).
    n = name.shape[0]
    if i + n + 1 >= b.shape[0] or b[i + n + 1] != _QUOTE:
        return False
    for j in range(n):
        if b[i + 1 + j] != name[j]:
            return False
    return True


@kernel
def _key_value(b, i):
    # The quoted key at b[i] and its colon: (key length, first key byte, index of the value); index -1
    # when malformed.
    end = _string_end(b, i)
    if end < 0:
        return 0, 0, -1
    j = _ws(b, end + 1)
    if j >= b.shape[0] or b[j] != _COLON:
        return 0, 0, -1
    return end - i - 1, b[i + 1], _ws(b, j + 1)


@kernel
def _event(b, i, tick_m, tick_k, header, side_out, tick_out, size_out):
    # The depthUpdate object at b[i]; returns the index after its closing brace, or -1.
    if i >= b.shape[0] or b[i] != _LBRACE:
        return -1
    seen = 0  # bit per key: e E T s U u pu b a ps
    t_ms = -1
    pu = -1
    n_bid = 0
    n_ask = 0
    i = _ws(b, i + 1)
    while True:
        if i >= b.shape[0] or b[i] != _QUOTE:
            return -1
        klen, c0, j = _key_value(b, i)
        if j < 0:
            return -1
        bit = 0
        if klen == 1 and c0 == 101:  # e
            bit = 1
            vend = _string_end(b, j) if j < b.shape[0] and b[j] == _QUOTE else -1
            if vend < 0 or vend - j - 1 != _DEPTH_UPDATE.shape[0]:
                return -1
            for q in range(_DEPTH_UPDATE.shape[0]):
                if b[j + 1 + q] != _DEPTH_UPDATE[q]:
                    return -1
            j = vend + 1
        elif klen == 1 and c0 == 115:  # s
            bit = 8
            vend = _string_end(b, j) if j < b.shape[0] and b[j] == _QUOTE else -1
            if vend < 0:
                return -1
            j = vend + 1
        elif klen == 1 and (c0 == 69 or c0 == 84 or c0 == 85 or c0 == 117):  # E T U u
            v, j = _uint(b, j)
            if j < 0:
                return -1
            if c0 == 69:
                bit = 2
                if v > _MAX_TIME_MS:
                    return -1
                header[H_EVENT_MS] = v
            elif c0 == 84:
                bit = 4
                if v > _MAX_TIME_MS:
                    return -1
                t_ms = v
            elif c0 == 85:
                bit = 16
                header[H_FIRST_ID] = v
            else:
                bit = 32
                header[H_FINAL_ID] = v
        elif klen == 2 and c0 == 112 and b[i + 2] == 117:  # pu
            bit = 64
            pu, j = _uint(b, j)
            if j < 0:
                return -1
        elif klen == 2 and c0 == 112 and b[i + 2] == 115:  # ps (COIN-M pair)
            bit = 512
            vend = _string_end(b, j) if j < b.shape[0] and b[j] == _QUOTE else -1
            if vend < 0:
                return -1
            j = vend + 1
        elif klen == 1 and c0 == 98:  # b
            bit = 128
            if seen & 256:
                return -1  # asks before bids: the caller's event order is bids first
            n_bid, j = _levels(
                b, j, 1, tick_m, tick_k, header[H_BAND_LO], header[H_BAND_HI], 0, side_out, tick_out, size_out
            )
            if j < 0:
                return -1
        elif klen == 1 and c0 == 97:  # a
            bit = 256
            if not seen & 128:
                return -1
            n_ask, j = _levels(
                b, j, -1, tick_m, tick_k, header[H_BAND_LO], header[H_BAND_HI], n_bid, side_out, tick_out, size_out
            )
            if j < 0:
                return -1
        else:
            return -1  # a key this scanner does not know: the general parser decides
        if seen & bit:
            return -1
        seen |= bit
        j = _ws(b, j)
        if j < b.shape[0] and b[j] == _COMMA:
            i = _ws(b, j + 1)
            continue
        if j < b.shape[0] and b[j] == _RBRACE:
            if (seen & (1 | 2 | 8 | 16 | 32 | 128 | 256)) != (1 | 2 | 8 | 16 | 32 | 128 | 256):
                return -1
            header[H_TRANSACTION_MS] = t_ms
            header[H_PREV_FINAL_ID] = pu
            header[H_EVENTS] = n_bid + n_ask
            return j + 1
        return -1


@kernel
def _event_start(b):
    # (index of the event object's "{", True when it sits in a {"stream": ..., "data": ...} wrapper);
    # index -1 when the frame has neither shape.
    start = _ws(b, 0)
    if start >= b.shape[0] or b[start] != _LBRACE:
        return -1, False
    i = _ws(b, start + 1)
    if not (i < b.shape[0] and b[i] == _QUOTE and _key(b, i, _STREAM)):
        return start, False
    i = _ws(b, i + _STREAM.shape[0] + 2)
    if i >= b.shape[0] or b[i] != _COLON:
        return -1, False
    i = _ws(b, i + 1)
    end = _string_end(b, i) if i < b.shape[0] and b[i] == _QUOTE else -1
    if end < 0:
        return -1, False
    i = _ws(b, end + 1)
    if i >= b.shape[0] or b[i] != _COMMA:
        return -1, False
    i = _ws(b, i + 1)
    if not (i < b.shape[0] and b[i] == _QUOTE and _key(b, i, _DATA)):
        return -1, False
    i = _ws(b, i + _DATA.shape[0] + 2)
    if i >= b.shape[0] or b[i] != _COLON:
        return -1, False
    return _ws(b, i + 1), True


@kernel
def frame_head(b):
    """Read a depthUpdate frame's head only: ``(T ms, U, u, pu)`` from the keys before its levels.

    For a hot path that must act on the frame's time before it reads the levels (a decision due
    before the frame). ``T`` is -1 unless the frame is a depthUpdate whose ``T`` precedes ``b``
    and ``a``, as on Binance's futures streams (spot frames have no ``T``: -1); ``pu`` is -1 when
    absent. Nothing is validated past the head: :func:`parse_depth_frame` still decides the frame.
    """
    start, _ = _event_start(b)
    t_ms, first, final, prev = -1, -1, -1, -1
    if start < 0:
        return -1, first, final, prev
    depth = False
    i = _ws(b, start + 1)
    while i < b.shape[0] and b[i] == _QUOTE:
        klen, c0, j = _key_value(b, i)
        if j < 0:
            return -1, first, final, prev
        if klen == 1 and (c0 == 98 or c0 == 97):  # b, a: the levels start
            return (t_ms if depth else -1), first, final, prev
        if j < b.shape[0] and b[j] == _QUOTE:
            vend = _string_end(b, j)
            if vend < 0:
                return -1, first, final, prev
            if klen == 1 and c0 == 101:  # e
                depth = vend - j - 1 == _DEPTH_UPDATE.shape[0]
                for q in range(_DEPTH_UPDATE.shape[0] if depth else 0):
                    depth = depth and b[j + 1 + q] == _DEPTH_UPDATE[q]
            j = vend + 1
        else:
            v, j = _uint(b, j)
            if j < 0:
                return -1, first, final, prev
            if klen == 1 and c0 == 84:  # T
                t_ms = v if v <= _MAX_TIME_MS else -1
            elif klen == 1 and c0 == 85:  # U
                first = v
            elif klen == 1 and c0 == 117:  # u
                final = v
            elif klen == 2 and c0 == 112 and b[i + 2] == 117:  # pu
                prev = v
        j = _ws(b, j)
        if j >= b.shape[0] or b[j] != _COMMA:
            return -1, first, final, prev
        i = _ws(b, j + 1)
    return -1, first, final, prev


@kernel
def parse_depth_frame(b, tick_m, tick_k, header, ts_out, kind_out, side_out, tick_out, size_out, flags_out):
    """Scan one frame; when it is handled, fill ``header`` and the first ``header[H_EVENTS]`` event rows.

    Parameters
    ----------
    b : ndarray
        uint8[n], the frame's bytes (``np.frombuffer(raw, np.uint8)``).
    tick_m, tick_k : int
        The tick size as ``tick_m / 10**tick_k`` (:func:`tick_decimal`).
    header : ndarray
        int64[N_HEADER]: out ``E``, ``T`` (-1 absent), ``U``, ``u``, ``pu`` (-1 absent), events written;
        in ``H_BAND_LO``, ``H_BAND_HI``, the prices accepted, ticks (a level outside: NOT_HANDLED).
    ts_out, kind_out, side_out, tick_out, size_out, flags_out : ndarray
        Event columns of equal length L (int64, int8, int8, int64, float64, int8): ``ts_event`` ns
        (``T`` if present, else ``E``), ``KIND_BOOK``, side (+1 bids first, then -1 asks), price in
        ticks, new size (base units, 0 deletes), ``FLAG_LAST_IN_MESSAGE`` on the last row.

    Returns
    -------
    int
        The number of events written (>= 0), or :data:`NOT_HANDLED` (any other frame, or one to
        leave to the general parser).
    """
    start, wrapped = _event_start(b)
    if start < 0:
        return NOT_HANDLED
    i = _event(b, start, tick_m, tick_k, header, side_out, tick_out, size_out)
    if i < 0:
        return NOT_HANDLED
    if wrapped:
        i = _ws(b, i)
        if i >= b.shape[0] or b[i] != _RBRACE:
            return NOT_HANDLED
        i += 1
    if _ws(b, i) != b.shape[0]:
        return NOT_HANDLED
    n = header[H_EVENTS]
    t = header[H_TRANSACTION_MS] if header[H_TRANSACTION_MS] >= 0 else header[H_EVENT_MS]
    for k in range(n):
        ts_out[k] = t * 1_000_000
        kind_out[k] = KIND_BOOK
        flags_out[k] = 0
    if n > 0:
        flags_out[n - 1] = FLAG_LAST_IN_MESSAGE
    return n


@kernel
def take_depth_frame(b, ids, tick_m, tick_k, header, ts_out, kind_out, side_out, tick_out, size_out, flags_out):
    """:func:`parse_depth_frame`, then :func:`~scalper.ingest.binance.sequencer.continue_ids` on its ids.

    Returns the number of events written when the frame is a depthUpdate that continues the synced
    book (``ids`` then hold its ``u``), else :data:`NOT_HANDLED` with ``ids`` unchanged: the caller
    passes the frame to the general parser and the sequencer's ``on_diff``, which decide and count.
    """
    n = parse_depth_frame(b, tick_m, tick_k, header, ts_out, kind_out, side_out, tick_out, size_out, flags_out)
    if n < 0 or not continue_ids(ids, header[H_FIRST_ID], header[H_FINAL_ID], header[H_PREV_FINAL_ID]):
        return NOT_HANDLED
    return n


class DepthFrameParser:
    """Preallocated buffers around :func:`parse_depth_frame` for one instrument.

    Parameters
    ----------
    tick_size : float
        Price increment, quote currency.
    capacity : int
        Most levels one frame may carry on this path (larger frames go to the general parser).
    """

    def __init__(self, tick_size: float, capacity: int = 4096) -> None:
        self.tick_m, self.tick_k = tick_decimal(tick_size)
        self.header = np.zeros(N_HEADER, dtype=np.int64)
        self.header[H_BAND_LO], self.header[H_BAND_HI] = NO_BAND
        self.ts_event = np.zeros(capacity, dtype=np.int64)
        self.kind = np.zeros(capacity, dtype=np.int8)
        self.side = np.zeros(capacity, dtype=np.int8)
        self.price_tick = np.zeros(capacity, dtype=np.int64)
        self.size = np.zeros(capacity, dtype=np.float64)
        self.flags = np.zeros(capacity, dtype=np.int8)
        self._args = (self.header, self.ts_event, self.kind, self.side, self.price_tick, self.size, self.flags)

    def parse(self, raw: bytes) -> int:
        """Return the number of book events written for a depthUpdate frame, or -1 for any other frame."""
        return parse_depth_frame(np.frombuffer(raw, dtype=np.uint8), self.tick_m, self.tick_k, *self._args)

    def take(self, raw: bytes, ids: np.ndarray) -> int:
        """:func:`take_depth_frame` on ``raw`` with the sequencer's ``ids``: events written, or -1."""
        return take_depth_frame(np.frombuffer(raw, dtype=np.uint8), ids, self.tick_m, self.tick_k, *self._args)

    def scan_args(self) -> tuple:
        """Return ``(tick_m, tick_k)``, then the header and the six event columns, as the kernels take them."""
        return (self.tick_m, self.tick_k, *self._args)

    def columns(self, n: int) -> tuple[np.ndarray, ...]:
        """Return views ``(ts_event, kind, side, price_tick, size, flags)`` of the first ``n`` events."""
        return (self.ts_event[:n], self.kind[:n], self.side[:n], self.price_tick[:n], self.size[:n], self.flags[:n])
