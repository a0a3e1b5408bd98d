"""Prometheus metrics for the hot path: one writer (the event loop), no locks.

``prometheus_client`` takes a lock at every update, which costs more than the update itself, and the
daemon updates two counters and two histograms per deciding frame. Here an update is an integer
addition (a histogram adds a bisect); figures: BENCHMARKS.md, 2026-12-06. A scrape on the HTTP
thread copies the values in one step (atomic under the GIL), so the exported buckets are always
cumulative and consistent with ``_count``; a ``_sum`` may lag by the update in progress.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class NsHistogram(Collector):
    """Histogram ``name`` (seconds, as Prometheus wants) fed with durations in int ns.

    Parameters
    ----------
    name, documentation : str
        Metric name (with its ``_seconds`` unit) and help text.
    buckets_s : sequence of float
        Increasing upper bounds, s; ``+Inf`` is added. A value equal to a bound falls in that bucket.
    registry : CollectorRegistry
        Where to register.
    """

    def __init__(self, name: str, documentation: str, buckets_s: Sequence[float], registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.buckets_s = tuple(buckets_s)
        self._bounds_ns = [round(b * 1e9) for b in self.buckets_s]
        self._counts = [0] * (len(self.buckets_s) + 1)
        self._sum_ns = 0
        registry.register(self)

    def observe_ns(self, ns: int) -> None:
        """Record one duration, ns (>= 0)."""
        self._counts[bisect_left(self._bounds_ns, ns)] += 1
        self._sum_ns += ns

    def collect(self) -> Iterator[HistogramMetricFamily]:
        counts = self._counts.copy()
        total = 0
        buckets = []
        for bound, c in zip((*self.buckets_s, float("inf")), counts, strict=True):
            total += c
            buckets.append((floatToGoString(bound), total))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self._sum_ns / 1e9)


class HotCounterChild:
    """One series of a :class:`HotCounter`: ``inc`` adds to a plain int."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        """Add ``amount`` (>= 0).

        Raises
        ------
        ValueError
            If ``amount`` is negative (a counter only goes up); the value is unchanged.
        """
        if amount < 0:
            raise ValueError(f"counters can only be incremented by non-negative amounts, got {amount}")
        self.value += amount


class HotCounter(Collector):
    """Counter ``<name>_total`` with one series per value of a fixed label, or a single series.

    Parameters
    ----------
    name, documentation : str
        Metric name without ``_total``, and help text.
    registry : CollectorRegistry
    label : str, optional
        The label's name; ``values`` are its values, one series each, created at once.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        registry: CollectorRegistry,
        label: str | None = None,
        values: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self.values = tuple(values) if label else ("",)
        self.children = tuple(HotCounterChild() for _ in self.values)
        registry.register(self)

    def inc(self, amount: int = 1) -> None:
        """Add to the single series (a counter without label)."""
        self.children[0].inc(amount)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label] if self.label else None)
        for value, child in zip(self.values, self.children, strict=True):
            family.add_metric([value] if self.label else [], child.value)
        yield family
