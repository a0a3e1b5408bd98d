"""Who may set the trading state, and how their wishes combine into the one the risk rules apply.

Several sources hold a view of the trading state of one instrument (:class:`Source`). Each owns one
slot; the effective state is the most restrictive slot (``HALTED`` > ``REDUCING_ONLY`` > ``ACTIVE``),
so no source can make trading looser than another source wants it:

* the **latched** sources (operator signal, risk limit, inference failure, engine error) only
  tighten their own slot; nothing automatic ever loosens them. Only an explicit operator action
  (:meth:`TradingControl.operator_set`, journaled by the daemon as an ``operator`` record) does;
* the **journal** slot follows the journal's health and clears by itself (the daemon clears it once
  the store is writable again and the buffered records have drained);
* the **key** slot is whatever the remote Redis halt key says. It can make trading safer than the
  other sources, never looser, because the key only ever writes its own slot.
"""

from __future__ import annotations

import enum

from scalper.risk.intent import TradingState


class Source(enum.Enum):
    """A source of trading-state wishes; each owns one slot of :class:`TradingControl`."""

    OPERATOR = "operator"
    """Operator signals (SIGUSR1 halted, SIGUSR2 reducing-only). Latched."""
    RISK = "risk"
    """Risk limits (the drawdown kill switch). Latched."""
    INFERENCE = "inference"
    """A model that failed at a decision or while preparing one. Latched."""
    ENGINE = "engine"
    """An unexpected error while processing a frame. Latched."""
    JOURNAL = "journal"
    """Journal health: set while the store cannot take records, cleared once it has drained."""
    KEY = "key"
    """The remote Redis halt key: exactly what the key says (``active`` when it is absent)."""


LATCHED = frozenset({Source.OPERATOR, Source.RISK, Source.INFERENCE, Source.ENGINE})
"""Sources whose slot only tightens until an explicit operator action."""


class TradingControl:
    """The slots of every :class:`Source` and their combination, the effective :attr:`state`.

    Attributes
    ----------
    state : TradingState
        The most restrictive slot; ``ACTIVE`` at start.
    """

    def __init__(self) -> None:
        self._slots = dict.fromkeys(Source, TradingState.ACTIVE)
        self.state = TradingState.ACTIVE

    def slot(self, source: Source) -> TradingState:
        """Return what ``source`` currently asks for."""
        return self._slots[source]

    def slots(self) -> dict[Source, TradingState]:
        """Return a copy of every slot (for logs and the journal)."""
        return dict(self._slots)

    def impose(self, source: Source, state: TradingState) -> TradingState:
        """Set ``source``'s slot to ``state`` and return the effective state.

        A latched source (:data:`LATCHED`) only tightens: asking for a looser state than its slot
        holds leaves the slot as it is. The journal and key sources set their slot to ``state``.

        Raises
        ------
        ValueError
            If ``state`` is not a :class:`TradingState` value.
        """
        state = TradingState(state)
        if source in LATCHED:
            state = max(state, self._slots[source])
        self._slots[source] = state
        return self._combine()

    def operator_set(self, state: TradingState) -> TradingState:
        """The explicit operator action: the operator slot becomes ``state`` and the other latched
        slots are released (``ACTIVE``); the journal and key slots stay. Return the effective state.

        This is the only way a latched slot loosens; the caller journals it.

        Raises
        ------
        ValueError
            If ``state`` is not a :class:`TradingState` value.
        """
        state = TradingState(state)
        for source in LATCHED:
            self._slots[source] = TradingState.ACTIVE
        self._slots[Source.OPERATOR] = state
        return self._combine()

    def describe(self) -> str:
        """Return the non-active slots as ``"operator=HALTED key=REDUCING_ONLY"`` (``"none"`` if all active)."""
        text = " ".join(f"{s.value}={v.name}" for s, v in self._slots.items() if v != TradingState.ACTIVE)
        return text or "none"

    def _combine(self) -> TradingState:
        self.state = max(self._slots.values())
        return self.state
