"""The hot-path kernels are compiled without numba's reference counting (lowlevel/jit.py)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.registry import CPUDispatcher

from scalper.engine import framepath
from scalper.exec import passive, queue
from scalper.features import kernels, ladder, state_layout
from scalper.ingest.binance import fastdepth, localbook, sequencer
from scalper.lowlevel import book, jit
from scalper.risk import kelly, limits, lots

HOT_MODULES = (
    book,
    ladder,
    state_layout,
    kernels,
    fastdepth,
    localbook,
    sequencer,
    framepath,
    kelly,
    limits,
    lots,
    queue,
    passive,
)


def _dispatchers(module):
    return [
        (name, obj)
        for name, obj in vars(module).items()
        if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__
    ]


@pytest.mark.parametrize("module", HOT_MODULES, ids=lambda m: m.__name__)
def test_every_kernel_of_the_hot_modules_is_compiled_without_nrt(module):
    found = _dispatchers(module)
    assert found, f"no numba kernel found in {module.__name__}"
    with_nrt = [name for name, d in found if d.targetoptions.get("_nrt", True)]
    assert with_nrt == [], f"{module.__name__}: compiled with NRT (use scalper.lowlevel.jit.kernel): {with_nrt}"


def _callee(a, b, i):
    return a[i] + b[i]


def _caller(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += callee(a, b, i)
    return s


def _compile_pair(**options):
    # A fresh compile (no cache: cached code cannot be inspected) of a loop calling a kernel with arrays.
    global callee
    callee = njit(**options)(_callee)
    caller = njit(**options)(_caller)
    a = np.arange(4.0)
    assert caller(a, a) == 12.0
    return caller.inspect_llvm(caller.signatures[0])


def test_without_nrt_an_array_call_has_no_reference_counting():
    options = {k: v for k, v in jit.KERNEL_OPTIONS.items() if k != "cache"}
    assert "NRT_incref" not in _compile_pair(**options)
    # The control: the same loop with numba's default runtime does count references, so the check can fail.
    assert "NRT_incref" in _compile_pair()
