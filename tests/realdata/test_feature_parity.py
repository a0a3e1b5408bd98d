"""Live path (one step() call per event from Python) and batch path (one numba loop) agree on real data."""

import numpy as np
import pytest

from scalper.features.batch import compute_features
from scalper.features.kernels import CODE_DECISION, I_DECISION_TS, PRE_MASK, FeatureState, step
from scalper.ingest import tickfile

pytestmark = pytest.mark.realdata


def test_goog_level10_live_and_batch_features_are_identical(goog10_tickfile):
    data = tickfile.read(goog10_tickfile)
    fm = compute_features(data)
    state = FeatureState()
    arrays = state.arrays()
    ts, kind, side, ticks, size, flags = (
        data.ts_event.tolist(),
        data.kind.tolist(),
        data.side.tolist(),
        data.price_tick.tolist(),
        data.size.tolist(),
        data.flags.tolist(),
    )
    rows = np.empty_like(fm.X)
    dec_ts = np.empty_like(fm.ts)
    n = 0
    feat = state.feat
    for i in range(len(ts)):
        while True:
            code = step(*arrays, ts[i], kind[i], side[i], ticks[i], size[i], flags[i], feat)
            if code & CODE_DECISION:
                rows[n] = feat
                dec_ts[n] = state.ist[I_DECISION_TS]
                n += 1
            if not code & PRE_MASK:
                break
    assert n == len(fm.ts) > 25_000
    assert np.array_equal(dec_ts, fm.ts)
    assert np.array_equal(rows, fm.X)
    assert np.all(np.isfinite(fm.X))
