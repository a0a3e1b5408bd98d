"""Release stores and acquire loads on int64 array slots, for counters one thread publishes to another.

A kernel that runs without the GIL (``lowlevel.jit.background_kernel``) and writes rows that another
thread reads must order two things: the rows before the counter that says they exist (writer), and
the counter before the rows (reader). Plain stores and loads order nothing: the compiler may move them,
and a weakly ordered CPU (ARM, POWER) may make them visible in another order. :func:`store_release`
and :func:`load_acquire` are the C++ ``memory_order_release`` / ``memory_order_acquire`` operations
on one slot: a reader whose acquire load returns a value the writer stored with a release store sees
every write the writer made before that store. On x86 both compile to plain moves (its stores are
already ordered), so the writer's loop pays nothing for them.

Both are numba intrinsics (code generated in place, no call, no NRT), usable in kernels compiled with
``lowlevel.jit``'s options; Python reaches :func:`load_acquire` through such a kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _int64_slot(context, builder, aryty, ary_v, idxty, idx_v):
    # Pointer to ary[idx] of a C-contiguous int64[:]; the index is not bounds-checked (callers own their slots).
    ary = context.make_array(aryty)(context, builder, ary_v)
    idx = context.cast(builder, idx_v, idxty, types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx], wraparound=False)


def _check(ary, idx) -> bool:
    return (
        isinstance(ary, types.Array)
        and ary.ndim == 1
        and ary.dtype == types.int64
        and ary.mutable
        and isinstance(idx, types.Integer)
    )


def _store_release(typingctx, ary, idx, value):
    """``ary[idx] = value`` as a release store (``ary``: int64[:]; ``value``: an integer).

    Every memory write before it is visible to a thread whose :func:`load_acquire` of ``ary[idx]``
    returns this value (or a later one).
    """
    if not (_check(ary, idx) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _int64_slot(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        val = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(val, ptr, ordering="release", align=8)
        return context.get_dummy_value()

    return types.void(ary, idx, value), codegen


def _load_acquire(typingctx, ary, idx):
    """Return ``ary[idx]`` read as an acquire load (``ary``: int64[:]).

    Reads made after it see every write the storing thread made before its :func:`store_release`
    of the value returned.
    """
    if not _check(ary, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _int64_slot(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load_atomic(ptr, ordering="acquire", align=8)

    return types.int64(ary, idx), codegen


if TYPE_CHECKING:
    # What a kernel calls; numba's stubs type an intrinsic by its typing function instead.
    def store_release(ary: np.ndarray, idx: int, value: int) -> None: ...

    def load_acquire(ary: np.ndarray, idx: int) -> int: ...

else:
    store_release = intrinsic(_store_release)
    load_acquire = intrinsic(_load_acquire)
