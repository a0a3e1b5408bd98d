"""How the hot-path kernels are compiled: numba, cached, without numba's runtime (NRT).

NRT reference-counts arrays: every array argument of a call that numba does not inline, and of one
inlined at the IR level (``inline="always"``), costs an atomic increment and decrement in an
external function. Inside a per-event loop those calls are most of the work (BENCHMARKS.md, "Where
the time goes": numba's reference counting). A kernel compiled without NRT cannot allocate arrays
(numba refuses to compile one that tries) and must not return an array; the kernels here only write
into arrays their caller preallocated, so they lose nothing. ``_nrt`` is numba's own switch for this
(numba issues #1204 and #2350), not yet a documented option: ``tests/unit/test_jit.py`` fails if a
kernel compiled through this module still calls NRT, so a numba upgrade that changes it cannot slow
the hot path silently, and pyproject.toml keeps numba below its next minor release.

Leaf module: imports nothing from the project, so ``ingest`` and ``features`` can both use it.
"""

from __future__ import annotations

from typing import Any

from numba import njit

# Any: `_nrt` is not among the keywords numba's type stubs declare for njit.
KERNEL_OPTIONS: dict[str, Any] = {"cache": True, "_nrt": False}

kernel = njit(**KERNEL_OPTIONS)
"""Decorator for a hot-path kernel that numba keeps as a function of its own."""

inline_kernel = njit(inline="always", **KERNEL_OPTIONS)
"""Decorator for a small hot-path kernel inlined into its callers (see ``features/kernels.py``)."""

background_kernel = njit(nogil=True, **KERNEL_OPTIONS)
"""Decorator for a kernel run in a thread beside Python (the backtest's feature pass): it releases the GIL."""
