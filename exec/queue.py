"""Queue-position models for a resting order on L2 (market-by-price) data.

An L2 feed says how much rests at a price, not where our order sits in it. These kernels keep one
number per resting order, ``front``: the quantity (lots, float64) estimated ahead of it at its price,
and update it from the two things the feed shows at that price: trades and level-size changes. They
follow hftbacktest 2.4.4 (``hftbacktest/src/backtest/models/queue.rs``, tag ``py-v2.4.4``) rule for
rule, so the passive exchange (:mod:`scalper.exec.passive`) can be checked fill for fill against it.

Public API (all numba kernels, callable from Python too; quantities in lots, float64)
---------------------------------------------------------------------------------------
* model ids: :data:`QUEUE_RISK_AVERSE`, :data:`QUEUE_PROB_POWER`, :data:`QUEUE_PROB_LOG`,
  :data:`QUEUE_PROB_POWER2`, :data:`QUEUE_PROB_LOG2`, :data:`QUEUE_PROB_POWER3`; a model is the pair
  ``(model id, float parameter)`` so one compiled loop serves all (:func:`check_queue_model` validates it).
* ``queue_on_trade(front, cum_trade, qty) -> (front, cum_trade)``: a trade of ``qty`` at the order's price.
* ``queue_on_depth(model, param, lot, front, cum_trade, prev_qty, new_qty) -> (front, cum_trade)``:
  the level at the order's price changed from ``prev_qty`` to ``new_qty``; ``lot`` is the base units
  per lot (the probabilities are evaluated in base units, below).
* ``queue_take_fill(front) -> (exec_lots, front)``: lots of our order executable now (int), and the
  front after taking them.
* ``queue_ahead(front) -> float``: the reported quantity ahead, ``max(front, 0)``.
* ``queue_behind(front, front_earlier) -> float``: keeps a later order of ours behind an earlier one
  at the same price (apply after each update, earliest order first).
* ``prob_back(model, param, front, back) -> float``: the model's probability that a decrease happened
  behind the order (``front``, ``back`` in base units).

Rules
-----
* New order: it joins at the back of its level, ``front = `` the level's size when the exchange
  accepts it, ``cum_trade = 0``.
* Trade at the order's price (every model): ``front -= qty``, and ``cum_trade += qty`` (trades seen
  at the level since its last size change).
* Level-size change ``prev_qty -> new_qty`` at the order's price:

  - risk-averse (hftbacktest ``RiskAdverseQueueModel``): cancellations never help:
    ``front = min(front, new_qty)``; ``cum_trade`` is cleared.
  - probabilistic (hftbacktest ``ProbQueueModel``; Rigtorp, "Estimating order queue position",
    rigtorp.se/2013/06/08/estimating-order-queue-position.html): the decrease not already explained
    by trades, ``chg = prev_qty - new_qty - cum_trade``, is cancellations; ``cum_trade`` is cleared.
    If ``chg < 0`` (the level grew) ``front = min(front, new_qty)``. Otherwise, with
    ``back = prev_qty - front`` and ``p = prob_back(front * lot, back * lot)`` (share of ``chg``
    cancelled behind us, from the quantities in base units as hftbacktest's ``ProbQueueModel`` holds
    them: ``ln(1 + x)`` is not free of the unit, so the log models give another ``p`` on lots),
    ``front = min(front - (1 - p) * chg + min(back - p * chg, 0), new_qty)``: the share
    ``1 - p = f(front) / (f(front) + f(back))`` of the cancellations came from orders ahead, and a
    share larger than the quantity behind spills over to the front.
* Fill: when ``front`` goes below zero by at least half a lot, ``round(-front)`` lots of our order
  traded (hftbacktest's ``is_filled``, rounding half away from zero) and ``front`` resets to 0.

* Several orders of ours at one price: hftbacktest estimates each on its own, and its probabilistic
  models can then move a later order ahead of an earlier one (earlier front 1 and later 2 at a level
  of 3 that drops to 1 under ``PowerProbQueueFunc(2)`` give 0.6 and 0.4). Time priority says the later
  order cannot pass the earlier, so the exchange applies :func:`queue_behind` after each update. With
  one order per price (hftbacktest's market-making examples) nothing changes.

Probability functions ``prob_back(front, back)`` (hftbacktest's ``Probability`` implementations):

=====================  =============================  ===================================
model id               hftbacktest                    ``p``
=====================  =============================  ===================================
``QUEUE_PROB_POWER``   ``PowerProbQueueFunc(n)``      ``f(back) / (f(back) + f(front))``, ``f(x) = x**n``
``QUEUE_PROB_LOG``     ``LogProbQueueFunc``           ``f(back) / (f(back) + f(front))``, ``f(x) = ln(1 + x)``
``QUEUE_PROB_POWER2``  ``PowerProbQueueFunc2(n)``     ``f(back) / f(back + front)``, ``f(x) = x**n``
``QUEUE_PROB_LOG2``    ``LogProbQueueFunc2``          ``f(back) / f(back + front)``, ``f(x) = ln(1 + x)``
``QUEUE_PROB_POWER3``  ``PowerProbQueueFunc3(n)``     ``1 - f(front / (front + back))``, ``f(x) = x**n``
=====================  =============================  ===================================

Differences from hftbacktest:

* ``p`` is clipped to ``[0, 1]``, and is 1 where the formula's denominator is not positive, so a
  cancellation never moves the order back: the front never grows (the issue's queue rule).
  hftbacktest does neither. Its front can fall below zero without a fill (a level update can take
  it there; only a trade checks for a fill); then ``back = prev_qty - front`` exceeds the level,
  ``f(front)`` of a log model is negative, ``p`` leaves ``[0, 1]``, and a later cancellation can
  climb the front back up to the new level size. Here such an order stays at the head of the
  queue and fills at the next trade at its price. (On the Binance comparison this is the one cause
  of every fill that differs under ``QUEUE_PROB_POWER2`` and ``QUEUE_PROB_LOG``.)
* ``p`` is 1 where hftbacktest's formula gives infinity (as hftbacktest) *or NaN* (``0 / 0`` when
  nothing is ahead or behind; hftbacktest then takes ``new_qty`` by ``f64::min``'s NaN rule, which
  only differs when the level did not shrink to zero, a state its own updates never reach).
* Quantities are kept in lots (hftbacktest: base units, rounded by the lot size at a fill), the same
  arithmetic except for the probability functions, which are therefore given base units.
"""

from __future__ import annotations

import math

from scalper.lowlevel.jit import inline_kernel

QUEUE_RISK_AVERSE = 0
QUEUE_PROB_POWER = 1
QUEUE_PROB_LOG = 2
QUEUE_PROB_POWER2 = 3
QUEUE_PROB_LOG2 = 4
QUEUE_PROB_POWER3 = 5

QUEUE_MODEL_NAMES = {
    "risk_averse": QUEUE_RISK_AVERSE,
    "prob_power": QUEUE_PROB_POWER,
    "prob_log": QUEUE_PROB_LOG,
    "prob_power2": QUEUE_PROB_POWER2,
    "prob_log2": QUEUE_PROB_LOG2,
    "prob_power3": QUEUE_PROB_POWER3,
}
"""Config names of the model ids."""

_POWER_MODELS = (QUEUE_PROB_POWER, QUEUE_PROB_POWER2, QUEUE_PROB_POWER3)


def check_queue_model(model: int, param: float) -> None:
    """Validate a ``(model id, parameter)`` pair before it reaches a kernel.

    Raises
    ------
    ValueError
        If ``model`` is not one of the ids above, or a power model's exponent ``param`` is not a finite
        number > 0 (hftbacktest's examples use 2 and 3).
    """
    if model not in QUEUE_MODEL_NAMES.values():
        raise ValueError(f"queue model id {model!r} is not one of {sorted(QUEUE_MODEL_NAMES.values())}")
    if model in _POWER_MODELS and not (math.isfinite(param) and param > 0.0):
        raise ValueError(f"power queue model needs a finite exponent > 0; got {param!r}")


@inline_kernel
def _f(model, param, x):
    if model == QUEUE_PROB_LOG or model == QUEUE_PROB_LOG2:
        return math.log(1.0 + x)
    return x**param


@inline_kernel
def prob_back(model, param, front, back):
    """Probability that a level decrease happened behind the order (hftbacktest's ``Probability.prob``).

    ``front``, ``back``: base units ahead of and behind the order. Returns a float in ``[0, 1]``;
    see the module docstring for the functions and the degenerate cases.
    """
    if model == QUEUE_PROB_POWER3:
        total = front + back
        p = 1.0 - _f(model, param, front / total) if total > 0.0 else 1.0
    elif model == QUEUE_PROB_POWER2 or model == QUEUE_PROB_LOG2:
        den = _f(model, param, back + front)
        p = _f(model, param, back) / den if den > 0.0 else 1.0
    else:
        fb = _f(model, param, back)
        den = fb + _f(model, param, front)
        p = fb / den if den > 0.0 else 1.0
    if not math.isfinite(p):
        return 1.0
    return min(max(p, 0.0), 1.0)


@inline_kernel
def queue_on_trade(front, cum_trade, qty):
    """Apply a trade of ``qty`` lots at the order's price: returns ``(front, cum_trade)``."""
    return front - qty, cum_trade + qty


@inline_kernel
def queue_on_depth(model, param, lot, front, cum_trade, prev_qty, new_qty):
    """Apply a level-size change ``prev_qty -> new_qty`` (lots) at the order's price; ``lot``: base units per lot.

    Returns ``(front, cum_trade)``; ``cum_trade`` is always cleared (the trades are now in the size).
    """
    if model == QUEUE_RISK_AVERSE:
        return min(front, new_qty), 0.0
    chg = prev_qty - new_qty - cum_trade
    if chg < 0.0:
        return min(front, new_qty), 0.0
    back = prev_qty - front
    p = prob_back(model, param, front * lot, back * lot)
    est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
    return min(est, new_qty), 0.0


@inline_kernel
def queue_take_fill(front):
    """Return ``(exec_lots, front)``: lots executable now (``round(-front)`` if > 0, else 0) and the new front."""
    exec_lots = int(math.floor(-front + 0.5))
    if exec_lots > 0:
        return exec_lots, 0.0
    return 0, front


@inline_kernel
def queue_ahead(front):
    """Return the quantity ahead (lots) as reported: ``max(front, 0)``."""
    return max(front, 0.0)


@inline_kernel
def queue_behind(front, front_earlier):
    """Return the front of a later order of ours, never ahead of an earlier one at the same price (lots)."""
    return max(front, front_earlier)
