"""FeatureStream: the batch pass run in a thread that a replay follows (features/batch.py)."""

from __future__ import annotations

import numpy as np
import pytest

from scalper.features import batch
from scalper.features.batch import FeatureStream, compute_features
from scalper.ingest.synthetic import SyntheticConfig, generate_session


@pytest.fixture(scope="module")
def session():
    return generate_session(SyntheticConfig(seed=5, duration_s=300.0))


def test_background_pass_gives_the_rows_of_the_pass_run_here(session):
    here = compute_features(session)
    stream = FeatureStream(session, background=True)
    # Read as a replay does: a row at a time, and everything before a time.
    k = stream.rows_ready(10)
    assert k >= 10 and np.array_equal(stream.ts[:10], here.ts[:10])
    t = int(here.ts[len(here.ts) // 2])
    assert stream.rows_before(t) == len(here.ts) // 2
    fm = stream.result()
    assert np.array_equal(fm.ts, here.ts) and np.array_equal(fm.X, here.X)
    assert np.array_equal(fm.mid_ts, here.mid_ts) and np.array_equal(fm.mid_tick, here.mid_tick)
    assert stream.rows_ready(len(here.ts) + 5) == len(here.ts)  # past the end: what there is
    assert stream.is_past(np.iinfo(np.int64).max)


def test_a_failed_pass_raises_in_the_reader(session, monkeypatch):
    def broken(*_args):
        raise MemoryError("no room for the rows")

    from scalper.features import kernel_sets

    v1 = kernel_sets.KERNEL_SETS[1]
    monkeypatch.setitem(kernel_sets.KERNEL_SETS, 1, v1._replace(run_batch=broken))
    stream = FeatureStream(session, background=True)
    with pytest.raises(RuntimeError, match="the feature pass failed") as err:
        stream.rows_ready(1)
    assert isinstance(err.value.__cause__, MemoryError)
    with pytest.raises(RuntimeError, match="the feature pass failed"):
        compute_features(session)


def test_the_replay_reads_counts_only_through_the_acquire_load(session, monkeypatch):
    # Every count the reader uses comes from load_progress (the acquire point); one it already holds is
    # not asked again, so a replay behind the pass does not touch the shared counters at all.
    here = compute_features(session)
    calls = []
    real = batch.load_progress
    monkeypatch.setattr(batch, "load_progress", lambda progress: calls.append(1) or real(progress))
    stream = FeatureStream(session, background=True)
    assert stream.rows_ready(len(here.ts) + 1) == len(here.ts)  # waits for the end of the pass
    n_calls = len(calls)
    assert n_calls >= 1
    assert stream.rows_ready(len(here.ts)) == len(here.ts)
    assert stream.rows_before(int(here.ts[-1])) == len(here.ts) - 1
    assert stream.is_past(int(here.ts[-1]))
    assert len(calls) == n_calls
    np.testing.assert_array_equal(stream.mid_at(here.ts), here.mid_at(here.ts))
