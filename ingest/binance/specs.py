"""Tick and lot sizes of Binance instruments: from a table of known symbols, else from the data.

Binance publishes them in ``exchangeInfo`` (filters ``PRICE_FILTER.tickSize`` and
``LOT_SIZE.stepSize``), which a recording does not contain. The importer therefore uses
:data:`KNOWN_TICK_SIZES` for the symbols of ../shared/data and otherwise infers both from the
decimals of the REST snapshot (2,000 levels): the increment is ``10**-k`` for the largest number
``k`` of significant decimals seen. Caveats: price strings carry padding zeros (spot always
writes 8 decimals, USD-M BTCUSDT writes ``"61800.20"`` with tick 0.1), so only significant
decimals count; a tick that is not a power of ten (0.5, 0.25) is inferred as the next finer power
of ten, which keeps every price on the integer-tick grid; a tick finer than every snapshot price
shows would be inferred too coarse, which 2,000 levels make very unlikely.
"""

from __future__ import annotations

import numpy as np

from scalper.ingest.binance.messages import Market

KNOWN_TICK_SIZES: dict[tuple[Market, str], float] = {
    (Market.SPOT, "BTCUSDT"): 0.01,
    (Market.SPOT, "ETHUSDT"): 0.01,
    (Market.USDM, "BTCUSDT"): 0.1,
    (Market.USDM, "ETHUSDT"): 0.01,
    (Market.COINM, "BTCUSD_PERP"): 0.1,
    (Market.COINM, "ETHUSD_PERP"): 0.01,
}
"""``PRICE_FILTER.tickSize`` (quote currency) of the symbols recorded in ../shared/data/hftbacktest."""


def significant_decimals(value: float) -> int:
    """Return the number of decimals of the shortest decimal that round-trips ``value`` (``61800.2`` -> 1)."""
    text = np.format_float_positional(value, trim="-")
    _, _, frac = text.partition(".")
    return len(frac)


def decimal_increment(values: np.ndarray) -> float:
    """Return ``10**-k`` for the largest number ``k`` of significant decimals in ``values``.

    Parameters
    ----------
    values : numpy.ndarray
        float64 prices (quote currency) or quantities (base units), parsed from decimal strings.

    Raises
    ------
    ValueError
        If ``values`` is empty.
    """
    values = np.unique(np.asarray(values, dtype=np.float64))
    if values.size == 0:
        raise ValueError("no values to infer an increment from")
    k = max(significant_decimals(float(v)) for v in values)
    return 10.0**-k


def tick_size(market: Market, symbol: str, prices: np.ndarray) -> float:
    """Return the tick size, quote currency: the known one for ``(market, symbol)``, else inferred from ``prices``."""
    known = KNOWN_TICK_SIZES.get((Market(market), symbol))
    return known if known is not None else decimal_increment(prices)
