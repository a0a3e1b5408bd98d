"""The kernels of one feature set, chosen once: what a caller holding a :class:`FeatureState` runs it with.

Set v1's kernels are ``features/kernels.py``'s, set v2's ``features/kernels_v2.py``'s; both take
``*state.arrays()`` where v1's take the v1 arrays, so a caller binds the set's kernels once (at start,
from ``[features] set``) and calls them as before, with no per-event test of the set.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from scalper.features import kernels, kernels_v2


class KernelSet(NamedTuple):
    """Numba dispatchers of one set, each with the v1 kernel's semantics (see ``features/kernels.py``)."""

    step: Any
    due_before: Any
    run_until: Any
    run_batch: Any
    compute_features: Any
    peek_next_decision: Any


KERNEL_SETS: dict[int, KernelSet] = {
    1: KernelSet(
        kernels.step,
        kernels.due_before,
        kernels.run_until,
        kernels.run_batch,
        kernels.compute_features,
        kernels.peek_next_decision,
    ),
    2: KernelSet(
        kernels_v2.step,
        kernels_v2.due_before,
        kernels_v2.run_until,
        kernels_v2.run_batch,
        kernels_v2.compute_features,
        kernels_v2.peek_next_decision,
    ),
}


def kernel_set(feature_set: int) -> KernelSet:
    """The kernels of feature set ``feature_set`` (``FeatureState.feature_set``).

    Raises
    ------
    ValueError
        No such set.
    """
    if feature_set not in KERNEL_SETS:
        raise ValueError(f"no kernels for feature set v{feature_set}; known: {sorted(KERNEL_SETS)}")
    return KERNEL_SETS[feature_set]
