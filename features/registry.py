"""Feature set v1: names, order, units, definitions and sources.

The order here is the column order of every feature matrix and of every model's input; a model card
stores these names and inference refuses a model whose list differs (see ``models/card.py``).
All features are computed from the best 5 levels of the book and the trades, at a decision time ``t``,
over events with ``ts_event`` in ``(t - window, t]``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
