"""Log lines that a flood of bad input could repeat per message, rate-limited per reason."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ReasonLog:
    """At most one line per reason every ``interval_s``; the next line that goes out says how many
    of that reason were held back since the previous one.

    Parameters
    ----------
    logger : logging.Logger
    interval_s : float
        Least time between two lines of one reason, s (0: every line goes out).
    clock : callable
        Monotonic time source, s.
    """

    def __init__(
        self, logger: logging.Logger, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, reason: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` under ``reason`` unless a line of that reason went out less than
        ``interval_s`` ago; return True when it was logged."""
        now = self.clock()
        last = self._last.get(reason)
        if last is not None and now - last < self.interval_s:
            self._held[reason] = self._held.get(reason, 0) + 1
            return False
        self._last[reason] = now
        held = self._held.pop(reason, 0)
        if held:
            msg += " (%d more %s since the last such line)"
            args = (*args, held, reason)
        self.logger.log(level, msg, *args)
        return True

    def warning(self, reason: str, msg: str, *args: object) -> bool:
        """:meth:`log` at WARNING."""
        return self.log(logging.WARNING, reason, msg, *args)
