"""Exchange fee arithmetic."""

from __future__ import annotations


def taker_fee(notional_quote: float, fee_bps: float) -> float:
    """Return the taker fee on a fill: ``notional_quote * fee_bps / 1e4``.

    Parameters
    ----------
    notional_quote : float
        Fill notional, price times quantity, quote currency, >= 0.
    fee_bps : float
        Taker fee rate, basis points of notional, >= 0.

    Returns
    -------
    float
        Fee, quote currency.

    Raises
    ------
    ValueError
        If either argument is negative (taker fees are charges, never rebates).
    """
    if notional_quote < 0.0 or fee_bps < 0.0:
        raise ValueError(f"taker fee needs notional >= 0 and fee_bps >= 0; got {notional_quote}, {fee_bps}")
    return notional_quote * fee_bps / 1e4
