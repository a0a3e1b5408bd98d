"""The feature pass publishes its progress to the replay thread with release stores read by acquire loads
(lowlevel/atomics.py, features/kernels.py run_batch / load_progress, features/batch.py FeatureStream), so
the replay never reads a row before it is written, on any CPU. x86 would hide a missing fence at run
time, so these tests read the generated code."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

import numpy as np
from numba import njit

from scalper.features import kernels
from scalper.lowlevel.atomics import load_acquire, store_release

# Fresh compiles (cached code cannot be inspected), with the hot-path options but no cache.
OPTIONS = {"cache": False, "_nrt": False}


def _publish(rows, progress, n):
    for i in range(n):
        rows[i] = 10 * i
        store_release(progress, 0, i + 1)


def _read(progress, slot):
    return load_acquire(progress, slot)


def test_store_release_is_an_atomic_release_store_after_the_row():
    f = njit(**OPTIONS)(_publish)
    rows, progress = np.zeros(4, dtype=np.int64), np.zeros(3, dtype=np.int64)
    f(rows, progress, 4)
    assert progress.tolist() == [4, 0, 0] and rows.tolist() == [0, 10, 20, 30]
    ir = f.inspect_llvm(f.signatures[0])
    assert re.search(r"store atomic i64 [^\n]* release, align 8", ir), "store_release is not a release store"


def test_load_acquire_is_an_atomic_acquire_load():
    f = njit(**OPTIONS)(_read)
    assert f(np.array([5, 6, 7], dtype=np.int64), 2) == 7
    ir = f.inspect_llvm(f.signatures[0])
    assert re.search(r"load atomic i64, [^\n]* acquire, align 8", ir), "load_acquire is not an acquire load"


def test_load_progress_reads_every_counter_with_an_acquire_load():
    f = njit(**OPTIONS)(kernels.load_progress.py_func)
    progress = np.zeros(kernels.N_PROGRESS, dtype=np.int64)
    progress[[kernels.P_ROWS, kernels.P_MIDS, kernels.P_PAST]] = (3, 4, 5)
    assert f(progress) == (3, 4, 5)
    ir = f.inspect_llvm(f.signatures[0])
    assert len(re.findall(r"load atomic i64, [^\n]* acquire", ir)) == kernels.N_PROGRESS


def test_run_batch_writes_progress_only_through_release_stores():
    # Compiling run_batch afresh to read its IR takes tens of seconds; its source says the same: no
    # plain store into `progress`, and a release store for each counter.
    tree = ast.parse(textwrap.dedent(inspect.getsource(kernels.run_batch.py_func)))
    plain = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AugAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == "progress"
    ]
    assert plain == [], f"run_batch stores into progress without store_release (lines {plain} of its source)"
    released = {
        node.args[1].id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "store_release"
    }
    assert released == {"P_ROWS", "P_MIDS", "P_PAST"}
