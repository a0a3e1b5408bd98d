"""Risk layer: fractional Kelly sizing, pre-trade limits, kill switch, PnL and drawdown accounting."""

from scalper.risk.accounting import Account
from scalper.risk.config import RiskConfig
from scalper.risk.intent import ApprovedOrder, OrderIntent, Rejection, RejectReason, TimeInForce, TradingState
from scalper.risk.kelly import PlannedFees, expected_edge_bps, kelly_fraction_star, kelly_size, round_trip_fee_bps
from scalper.risk.limits import RiskManager
from scalper.risk.market import MarketState

__all__ = [
    "Account",
    "ApprovedOrder",
    "MarketState",
    "OrderIntent",
    "PlannedFees",
    "Rejection",
    "RejectReason",
    "RiskConfig",
    "RiskManager",
    "TimeInForce",
    "TradingState",
    "expected_edge_bps",
    "kelly_fraction_star",
    "kelly_size",
    "round_trip_fee_bps",
]
