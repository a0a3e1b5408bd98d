"""Execution: the adapter interface, the order state machine, fees, and the simulated exchange."""

from scalper.exec.adapter import ExecutionAdapter
from scalper.exec.fees import taker_fee
from scalper.exec.orders import TRANSITIONS, Fill, InvalidTransition, Order, OrderStatus
from scalper.exec.simulated import SimulatedExchange

__all__ = [
    "TRANSITIONS",
    "ExecutionAdapter",
    "Fill",
    "InvalidTransition",
    "Order",
    "OrderStatus",
    "SimulatedExchange",
    "taker_fee",
]
