"""Feature sets v1 and v2: names, order, units, definitions and sources.

The order here is the column order of every feature matrix and of every model's input; a model card
stores these names and its set version, and inference refuses a model whose list differs (see
``models/card.py``). Set v2 is v1 followed by the regime and microstructure columns of
:data:`FEATURES_V2_EXTRA`, so a v1 column has the same position in both sets. The set is chosen once, by
``[features] set`` (``features/config.py``): v1 is computed by ``features/kernels.py``, v2 by
``features/kernels_v2.py``.

All features are computed from the best 5 levels of the book and the trades, at a decision time ``t``,
over events with ``ts_event`` in ``(t - window, t]``. The v2 windowed quantities are collected at
message ends (``FLAG_LAST_IN_MESSAGE``) and carry the message end's time.
"""

from __future__ import annotations

from dataclasses import dataclass

# The default set: an engine whose config does not say ``[features] set`` computes it and loads its models.
FEATURE_SET_VERSION = 1

# Time windows shared by every windowed feature; the ring buffer keeps one running sum per window.
WINDOWS_NS: tuple[int, ...] = (1_000_000_000, 5_000_000_000, 30_000_000_000)
DEPTH_LEVELS = 5


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its column name, unit, definition and the published source it follows."""

    name: str
    unit: str
    definition: str
    source: str


_CKS = "Cont, Kukanov & Stoikov (2014), 'The price impact of order book events', J. Fin. Econometrics 12(1)"
_RV = "Andersen & Bollerslev (1998); Barndorff-Nielsen & Shephard (2002): realized variance"
_TFI = "Signed aggressor volume imbalance (Lee & Ready 1991 trade sign; aggressor flag from the venue)"

FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("spread_ticks", "ticks", "best ask - best bid", "standard"),
    FeatureSpec("mid_return_1s_bps", "bps", "1e4 * log(mid_t / mid_{t-1s})", "standard log return"),
    FeatureSpec("mid_return_5s_bps", "bps", "1e4 * log(mid_t / mid_{t-5s})", "standard log return"),
    FeatureSpec(
        "microprice_minus_mid_ticks",
        "ticks",
        "(P_b*Q_a + P_a*Q_b)/(Q_b + Q_a) - mid: the size-weighted mid (first-order micro-price)",
        "Stoikov (2018), 'The micro-price: a high-frequency estimator of future prices', Quant. Finance 18(12)",
    ),
    FeatureSpec(
        "queue_imbalance_l1",
        "ratio in [-1, 1]",
        "(Q_b - Q_a) / (Q_b + Q_a) at the best level",
        "Gould & Bonart (2016), 'Queue imbalance as a one-tick-ahead price predictor in a LOB', MMF 2(2)",
    ),
    FeatureSpec(
        "depth_imbalance_5",
        "ratio in [-1, 1]",
        "(sum Q_b - sum Q_a) / (sum Q_b + sum Q_a) over the best 5 levels",
        "Cao, Hansch & Wang (2009), 'The information content of an open limit-order book', JFM 29(1)",
    ),
    FeatureSpec("ofi_1s", "base units", "sum of OFI increments e_n over 1 s", _CKS),
    FeatureSpec("ofi_5s", "base units", "sum of OFI increments e_n over 5 s", _CKS),
    FeatureSpec("ofi_30s", "base units", "sum of OFI increments e_n over 30 s", _CKS),
    FeatureSpec(
        "trade_flow_imbalance_5s",
        "ratio in [-1, 1]",
        "(buy - sell) / (buy + sell) aggressor volume, 5 s; 0 without trades",
        _TFI,
    ),
    FeatureSpec(
        "trade_flow_imbalance_30s",
        "ratio in [-1, 1]",
        "(buy - sell) / (buy + sell) aggressor volume, 30 s; 0 without trades",
        _TFI,
    ),
    FeatureSpec("realized_vol_5s_bps", "bps", "1e4 * sqrt(sum of squared mid log returns over 5 s)", _RV),
    FeatureSpec("realized_vol_30s_bps", "bps", "1e4 * sqrt(sum of squared mid log returns over 30 s)", _RV),
    FeatureSpec("trade_count_5s", "trades", "number of trade events over 5 s", "standard"),
    FeatureSpec(
        "time_since_last_trade_s",
        "s",
        "t - ts of the last trade; before the first trade, t - ts of the first event seen",
        "standard",
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)

# Trades in the trade-sign autocorrelation window (a count window, not a time window).
SIGN_WINDOW_TRADES = 50

_RVR = "Realized variance ratio (Andersen & Bollerslev 1998): recent variance rate over the session's"
_KAUF = "Kaufman (1995), 'Smarter Trading', efficiency ratio"
_KYLE = (
    "Kyle (1985), 'Continuous auctions and insider trading', Econometrica 53(6); estimated as in Hasbrouck "
    "(2007), 'Empirical Market Microstructure', ch. 5: OLS of price changes on signed order flow"
)
_L2 = (
    "L2 event inference (Cont, Stoikov & Talreja 2010 order-flow classes): at a level within the best 5, a "
    "size increase is an add; a decrease is a cancel except for the part matched by traded volume at that "
    "price (one pending traded amount per side, at the last traded price, consumed by the next decreases there)"
)
_XGH = "Xu, Gould & Howison (2019), 'Multi-level order-flow imbalance in a limit order book', MMF 4(1)"
_MLOFI = "CKS increment e_n of level m: m-th best prices and sizes; a side with fewer than m levels adds 0"

FEATURES_V2_EXTRA: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "vol_regime_30s",
        "ratio >= 0",
        "sqrt((RV2_30s / min(30 s, T)) / (RV2_session / T)): realized variance per second over the last 30 s "
        "over that of the session so far (T = t - first event, RV2 = sum of squared mid log returns); "
        "1 while the session has no variance",
        _RVR,
    ),
    FeatureSpec(
        "efficiency_ratio_30s",
        "ratio in [0, 1]",
        "|sum of mid log returns| / sum of |mid log returns| over 30 s; 0 without a mid move",
        _KAUF,
    ),
    FeatureSpec(
        "time_of_day_s",
        "s",
        "equities: t - the session open (09:30 America/New_York); 24/7 venues (crypto): t - UTC midnight",
        "features/session.py",
    ),
    FeatureSpec(
        "time_to_close_s",
        "s",
        "equities: the session close (16:00 America/New_York) - t; -1 on 24/7 venues (no close)",
        "features/session.py",
    ),
    FeatureSpec(
        "kyle_lambda_30s",
        "bps per base unit",
        "sum x_k y_k / sum x_k^2 over 30 s (OLS through the origin); one observation at each message end "
        "where the mid moved: y_k = that mid log return (bps), x_k = signed aggressor volume since the "
        "previous observation; 0 without volume",
        _KYLE,
    ),
    FeatureSpec(
        "trade_sign_autocorr_50",
        "ratio in [-1, 1]",
        "mean of s_i * s_(i-1) over the last 50 trades (s = +1 buy, -1 sell aggressor; uncentred lag-1 "
        "autocorrelation); 0 before the second trade",
        "Lillo & Farmer (2004), 'The long memory of the efficient market', SNDE 8(3)",
    ),
    FeatureSpec(
        "spread_change_5s_ticks_per_s",
        "ticks/s",
        "sum of spread changes between consecutive valid message ends over 5 s, / 5 s",
        "standard",
    ),
    FeatureSpec(
        "queue_depletion_bid_5s",
        "base units/s",
        "size decreases at the best bid price (trades and cancels), over 5 s, / 5 s",
        _L2,
    ),
    FeatureSpec("queue_depletion_ask_5s", "base units/s", "the same at the best ask", _L2),
    FeatureSpec("add_rate_bid_5s", "base units/s", "size added at the best 5 bid levels over 5 s, / 5 s", _L2),
    FeatureSpec("add_rate_ask_5s", "base units/s", "size added at the best 5 ask levels over 5 s, / 5 s", _L2),
    FeatureSpec("cancel_rate_bid_5s", "base units/s", "size cancelled at the best 5 bid levels over 5 s, / 5 s", _L2),
    FeatureSpec("cancel_rate_ask_5s", "base units/s", "size cancelled at the best 5 ask levels over 5 s, / 5 s", _L2),
    FeatureSpec("ofi_l2_5s", "base units", f"level-2 OFI over 5 s ({_MLOFI}; level 1 is ofi_5s)", _XGH),
    FeatureSpec("ofi_l3_5s", "base units", "level-3 OFI over 5 s (as ofi_l2_5s)", _XGH),
    FeatureSpec("ofi_l4_5s", "base units", "level-4 OFI over 5 s (as ofi_l2_5s)", _XGH),
    FeatureSpec("ofi_l5_5s", "base units", "level-5 OFI over 5 s (as ofi_l2_5s)", _XGH),
)

FEATURES_V2: tuple[FeatureSpec, ...] = FEATURES + FEATURES_V2_EXTRA
FEATURE_NAMES_V2: tuple[str, ...] = tuple(f.name for f in FEATURES_V2)
N_FEATURES_V2 = len(FEATURES_V2)

FEATURE_SETS: dict[int, tuple[str, ...]] = {1: FEATURE_NAMES, 2: FEATURE_NAMES_V2}


def feature_names(version: int) -> tuple[str, ...]:
    """Column names of feature set ``version``, in matrix order.

    Raises
    ------
    ValueError
        No such set (known: the keys of :data:`FEATURE_SETS`).
    """
    if version not in FEATURE_SETS:
        raise ValueError(f"no feature set v{version}; known: {sorted(FEATURE_SETS)}")
    return FEATURE_SETS[version]
