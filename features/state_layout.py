"""Slot layout of the feature kernels' state arrays, and the feature columns: one table each.

The kernels keep their scalar state in two flat arrays, ``ist`` (int64[N_ISTATE]) and ``fst``
(float64[N_FSTATE]), and each ring event in ``N_CH`` channels, so that a numba call passes a few arrays
instead of dozens of scalars. Every index into them is a module-level ``int`` taken here, in table
order, from a :class:`_Slots` counter: numba freezes a global ``int`` into the compiled code as a
constant, so a named slot costs exactly what a literal index did, and no slot number is written twice.
Numba's cache keys a kernel on its own source file only: after a change here, delete the cached kernels
(``*.nbi``, ``*.nbc``) or they keep the old positions. A slot that spans the time windows (one entry per
window of ``WINDOWS_NS``) takes ``N_WINDOWS`` slots; :func:`tail_slot`, :func:`sum_slot` and
:func:`nonzero_slot` give the entry of window ``w``.

The feature columns (``COL_*``) are the positions of ``features.registry.FEATURE_NAMES``, looked up by
name, so the registry alone decides the column order.

Feature set v2 (``features/kernels_v2.py``) keeps its extra state in arrays of its own (``ist2``,
``fst2``, and a second ring ``rb2_ts``/``rb2_val`` with ``N_CH2`` channels over the windows
``WINDOWS2_NS``), laid out in the v2 tables below; set v1 never touches them, and every v1 slot means
the same in both sets.

Readers outside the features layer (risk reads the book's age off the state) use the accessors
:func:`last_book_ts` and :func:`book_is_valid`, which run as plain Python when called from Python and are
inlined when a numba kernel calls them.
"""

from __future__ import annotations

from numba.extending import register_jitable

from scalper.features.registry import DEPTH_LEVELS, FEATURE_NAMES, FEATURE_NAMES_V2, SIGN_WINDOW_TRADES, WINDOWS_NS
from scalper.lowlevel.jit import inline_kernel


class _Slots:
    """Hands out consecutive slots of one array: the order of the :meth:`take` calls is the layout."""

    def __init__(self) -> None:
        self.size = 0

    def take(self, width: int = 1) -> int:
        """Reserve ``width`` slots; return the first."""
        first = self.size
        self.size += width
        return first


def window_index(window_ns: int) -> int:
    """Position of the ``window_ns`` window in ``WINDOWS_NS``.

    Raises
    ------
    ValueError
        The registry has no window of that length (a feature the kernels compute needs it).
    """
    if window_ns not in WINDOWS_NS:
        raise ValueError(f"no {window_ns} ns window in features.registry.WINDOWS_NS {WINDOWS_NS}")
    return WINDOWS_NS.index(window_ns)


N_WINDOWS = len(WINDOWS_NS)
W_1S = window_index(1_000_000_000)
W_5S = window_index(5_000_000_000)
W_30S = window_index(30_000_000_000)

# Ring channels: one float per ring event each.
_c = _Slots()
C_OFI = _c.take()  # OFI increment e_n, base units
C_BUY = _c.take()  # aggressor buy volume, base units
C_SELL = _c.take()  # aggressor sell volume, base units
C_LOGRET = _c.take()  # mid log return since the previous valid message end
C_LOGRET2 = _c.take()  # its square
C_TRADES = _c.take()  # 1 per trade event
N_CH = _c.size

# Integer state (ist).
_i = _Slots()
I_GRID_NS = _i.take()  # decision grid step, ns
I_NEXT_GRID = _i.take()  # next grid point not yet passed, ns
I_DECISION_TS = _i.take()  # grid time of the decision last reported, ns
I_LAST_EVENT_TS = _i.take()  # ts_event of the last event applied, ns
I_LAST_TRADE_TS = _i.take()  # ts_event of the last trade (INT64_MIN before the first), ns
I_FIRST_TS = _i.take()  # ts_event of the first event seen (INT64_MIN before it), ns
I_HEAD = _i.take()  # ring sequence number of the next push
I_TAIL = _i.take(N_WINDOWS)  # tail_slot(w): oldest ring sequence still inside window w
I_PREV_BID = _i.take()  # best bid at the previous valid message end, ticks
I_PREV_ASK = _i.take()  # best ask at the previous valid message end, ticks
I_HAS_PREV = _i.take()  # 1: the previous message end was valid (OFI and returns have a reference)
I_IS_VALID = _i.take()  # 1: the book is two-sided and not crossed
I_IN_SNAPSHOT = _i.take()  # 1: inside a snapshot, until its last message
I_BOOK_OVERFLOWS = _i.take()  # level updates the deep book could not hold
I_RING_OVERFLOWS = _i.take()  # ring events dropped before their window ended
I_WAKE_TS = _i.take()  # step() reports CODE_WAKE before the first event after it, ns
I_WATCH_BID_HI = _i.take()  # watch levels of CODE_WATCH, ticks
I_WATCH_BID_LO = _i.take()
I_WATCH_ASK_HI = _i.take()
I_WATCH_ASK_LO = _i.take()
I_EVENTS = _i.take()  # events applied
I_CROSSED = _i.take()  # message ends with a crossed book
I_DECISIONS = _i.take()  # decisions reported
I_LAST_BOOK_TS = _i.take()  # last book level or clear event: the book's age (trades do not refresh it)
I_DECIDE_FROM = _i.take()  # grid points before this time pass without a decision (a replay that knows they are inert)
I_BOOK_ONLY = _i.take()  # 1: book, grid and watches only, no feature windows (features came from a batch pass)
N_ISTATE = _i.size

# Float state (fst).
_f = _Slots()
F_PREV_BID_SZ = _f.take()  # best bid size at the previous valid message end, base units
F_PREV_ASK_SZ = _f.take()  # best ask size at the previous valid message end, base units
F_LAST_MID = _f.take()  # mid at the last valid message end, ticks
F_SUM = _f.take(N_WINDOWS * N_CH)  # sum_slot(w, c): running sum of channel c over window w
F_NONZERO = _f.take(N_WINDOWS * N_CH)  # nonzero_slot(w, c): nonzero terms of channel c in window w
N_FSTATE = _f.size

# Feature columns, in the registry's order.
FEATURE_INDEX: dict[str, int] = {name: j for j, name in enumerate(FEATURE_NAMES)}
COL_SPREAD_TICKS = FEATURE_INDEX["spread_ticks"]
COL_MID_RETURN_1S_BPS = FEATURE_INDEX["mid_return_1s_bps"]
COL_MID_RETURN_5S_BPS = FEATURE_INDEX["mid_return_5s_bps"]
COL_MICROPRICE_MINUS_MID_TICKS = FEATURE_INDEX["microprice_minus_mid_ticks"]
COL_QUEUE_IMBALANCE_L1 = FEATURE_INDEX["queue_imbalance_l1"]
COL_DEPTH_IMBALANCE_5 = FEATURE_INDEX["depth_imbalance_5"]
COL_OFI_1S = FEATURE_INDEX["ofi_1s"]
COL_OFI_5S = FEATURE_INDEX["ofi_5s"]
COL_OFI_30S = FEATURE_INDEX["ofi_30s"]
COL_TRADE_FLOW_IMBALANCE_5S = FEATURE_INDEX["trade_flow_imbalance_5s"]
COL_TRADE_FLOW_IMBALANCE_30S = FEATURE_INDEX["trade_flow_imbalance_30s"]
COL_REALIZED_VOL_5S_BPS = FEATURE_INDEX["realized_vol_5s_bps"]
COL_REALIZED_VOL_30S_BPS = FEATURE_INDEX["realized_vol_30s_bps"]
COL_TRADE_COUNT_5S = FEATURE_INDEX["trade_count_5s"]
COL_TIME_SINCE_LAST_TRADE_S = FEATURE_INDEX["time_since_last_trade_s"]

# Feature set v2: windows of its ring, ns (30 s: regime, trend, Kyle; 5 s: the order-flow rates).
WINDOWS2_NS: tuple[int, ...] = (5_000_000_000, 30_000_000_000)
N_WINDOWS2 = len(WINDOWS2_NS)
W2_5S = WINDOWS2_NS.index(5_000_000_000)
W2_30S = WINDOWS2_NS.index(30_000_000_000)

# v2 ring channels: one float per v2 ring event (a message end) each.
_c2 = _Slots()
C2_ABS_RET = _c2.take()  # |mid log return| of the message end
C2_KYLE_XX = _c2.take()  # x_k^2 of a Kyle observation (signed volume squared)
C2_KYLE_XY = _c2.take()  # x_k * y_k (signed volume times the mid log return in bps)
C2_DSPREAD = _c2.take()  # spread change since the previous valid message end, ticks
C2_DEPLETION = _c2.take(2)  # + side row (0 bid, 1 ask): size decrease at the best price, base units
C2_ADD = _c2.take(2)  # + side row: size added within the best DEPTH_LEVELS levels
C2_CANCEL = _c2.take(2)  # + side row: size cancelled within the best DEPTH_LEVELS levels
C2_OFI = _c2.take(DEPTH_LEVELS - 1)  # + (m - 2): OFI increment of level m = 2..DEPTH_LEVELS
N_CH2 = _c2.size

# v2 integer state (ist2).
_i2 = _Slots()
I2_HEAD = _i2.take()  # v2 ring sequence number of the next push
I2_TAIL = _i2.take(N_WINDOWS2)  # tail2_slot(w): oldest v2 ring sequence still inside window w
I2_RING_OVERFLOWS = _i2.take()  # v2 ring events dropped before their window ended
I2_OPEN_NS = _i2.take()  # session open, ns since the epoch (features/session.py)
I2_CLOSE_NS = _i2.take()  # session close, ns since the epoch
I2_ALL_DAY = _i2.take()  # 1: a 24/7 venue: time of day from UTC midnight, no close
I2_HAS_SESSION = _i2.take()  # 1: the session clock was set
I2_TRADES = _i2.take()  # signed trades seen (the sign window's sequence)
I2_SIGN_PROD = _i2.take()  # sum of s_i * s_(i-1) over the pairs inside the sign window
I2_SIGNS = _i2.take(SIGN_WINDOW_TRADES)  # the last trade signs, slot (sequence mod SIGN_WINDOW_TRADES)
I2_PENDING_PX = _i2.take(2)  # + side row: price of the pending traded volume, ticks
I2_PREV_PX = _i2.take(2 * DEPTH_LEVELS)  # + side * DEPTH_LEVELS + level: prices at the previous valid message end
I2_PREV_N = _i2.take(2)  # + side row: levels held at the previous valid message end
N_ISTATE2 = _i2.size

# v2 float state (fst2).
_f2 = _Slots()
F2_SESSION_RV2 = _f2.take()  # sum of squared mid log returns since the first event
F2_KYLE_X = _f2.take()  # signed aggressor volume since the last Kyle observation, base units
F2_PENDING_VOL = _f2.take(2)  # + side row: traded volume not yet matched by a size decrease, base units
F2_PREV_SZ = _f2.take(2 * DEPTH_LEVELS)  # + side * DEPTH_LEVELS + level: sizes at the previous valid message end
F2_ACC = _f2.take(N_CH2)  # + channel: the current message's value, pushed at its end
F2_SUM = _f2.take(N_WINDOWS2 * N_CH2)  # sum2_slot(w, c): running sum of v2 channel c over window w
F2_NONZERO = _f2.take(N_WINDOWS2 * N_CH2)  # nonzero2_slot(w, c): its nonzero terms
N_FSTATE2 = _f2.size

# v2 feature columns (v1's COL_* keep their positions: v2 = v1 + these).
FEATURE_INDEX_V2: dict[str, int] = {name: j for j, name in enumerate(FEATURE_NAMES_V2)}
COL_VOL_REGIME_30S = FEATURE_INDEX_V2["vol_regime_30s"]
COL_EFFICIENCY_RATIO_30S = FEATURE_INDEX_V2["efficiency_ratio_30s"]
COL_TIME_OF_DAY_S = FEATURE_INDEX_V2["time_of_day_s"]
COL_TIME_TO_CLOSE_S = FEATURE_INDEX_V2["time_to_close_s"]
COL_KYLE_LAMBDA_30S = FEATURE_INDEX_V2["kyle_lambda_30s"]
COL_TRADE_SIGN_AUTOCORR = FEATURE_INDEX_V2["trade_sign_autocorr_50"]
COL_SPREAD_CHANGE_5S = FEATURE_INDEX_V2["spread_change_5s_ticks_per_s"]
COL_QUEUE_DEPLETION = FEATURE_INDEX_V2["queue_depletion_bid_5s"]  # + side row (ask next)
COL_ADD_RATE = FEATURE_INDEX_V2["add_rate_bid_5s"]  # + side row
COL_CANCEL_RATE = FEATURE_INDEX_V2["cancel_rate_bid_5s"]  # + side row
COL_OFI_L2 = FEATURE_INDEX_V2["ofi_l2_5s"]  # + (m - 2) for level m


def _check_v2_columns() -> None:
    # The "+ side row" and "+ level" columns above rely on adjacent names in the registry.
    pairs = (
        (COL_QUEUE_DEPLETION + 1, "queue_depletion_ask_5s"),
        (COL_ADD_RATE + 1, "add_rate_ask_5s"),
        (COL_CANCEL_RATE + 1, "cancel_rate_ask_5s"),
        *((COL_OFI_L2 + m - 2, f"ofi_l{m}_5s") for m in range(2, DEPTH_LEVELS + 1)),
    )
    for col, name in pairs:
        if FEATURE_NAMES_V2[col] != name:
            raise ValueError(f"features.registry: column {col} must be {name!r}, is {FEATURE_NAMES_V2[col]!r}")


_check_v2_columns()


@inline_kernel
def tail_slot(w):
    """``ist`` slot of window ``w``'s tail: the oldest ring sequence number still inside it."""
    return I_TAIL + w


@inline_kernel
def sum_slot(w, c):
    """``fst`` slot of the running sum of channel ``c`` over window ``w``."""
    return F_SUM + w * N_CH + c


@inline_kernel
def nonzero_slot(w, c):
    """``fst`` slot of the number of nonzero terms of channel ``c`` in window ``w`` (a float count)."""
    return F_NONZERO + w * N_CH + c


@inline_kernel
def tail2_slot(w):
    """``ist2`` slot of v2 window ``w``'s tail."""
    return I2_TAIL + w


@inline_kernel
def sum2_slot(w, c):
    """``fst2`` slot of the running sum of v2 channel ``c`` over v2 window ``w``."""
    return F2_SUM + w * N_CH2 + c


@inline_kernel
def nonzero2_slot(w, c):
    """``fst2`` slot of the nonzero terms of v2 channel ``c`` in v2 window ``w`` (a float count)."""
    return F2_NONZERO + w * N_CH2 + c


# register_jitable, not a kernel: risk calls these from Python too, where a numba dispatch would cost
# more than the read; numba kernels that call them inline them (with the caller's options, NRT off).
@register_jitable(inline="always")
def last_book_ts(ist):
    """Time of the last book level or clear event applied (ns since the epoch): the book's age.

    ``ist`` is :class:`~scalper.features.kernels.FeatureState`'s ``ist`` (int64[N_ISTATE]).
    """
    return ist[I_LAST_BOOK_TS]


@register_jitable(inline="always")
def book_is_valid(ist):
    """True when the book is two-sided and not crossed (``ist`` as for :func:`last_book_ts`)."""
    return ist[I_IS_VALID] != 0
