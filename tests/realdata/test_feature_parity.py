"""Live path (one step() call per event from Python) and batch path (one numba loop) agree on real data,
for feature set v1 and for set v2 (whose v1 columns are set v1's, bit for bit)."""

import numpy as np
import pytest

from scalper.features import kernels, kernels_v2
from scalper.features.batch import compute_features
from scalper.features.kernels import CODE_DECISION, I_DECISION_TS, PRE_MASK, FeatureState
from scalper.features.registry import N_FEATURES
from scalper.features.session import session_clock
from scalper.ingest import tickfile

pytestmark = pytest.mark.realdata


def _live_rows(data, state, step, n_rows):
    arrays = state.arrays()
    ts, kind, side, ticks, size, flags = (
        data.ts_event.tolist(),
        data.kind.tolist(),
        data.side.tolist(),
        data.price_tick.tolist(),
        data.size.tolist(),
        data.flags.tolist(),
    )
    rows = np.empty((n_rows, state.feat.shape[0]))
    dec_ts = np.empty(n_rows, dtype=np.int64)
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
    return n, dec_ts, rows


def test_goog_level10_live_and_batch_features_are_identical(goog10_tickfile):
    data = tickfile.read(goog10_tickfile)
    fm = compute_features(data)
    n, dec_ts, rows = _live_rows(data, FeatureState(), kernels.step, len(fm.ts))
    assert n == len(fm.ts) > 25_000
    assert np.array_equal(dec_ts, fm.ts)
    assert np.array_equal(rows, fm.X)
    assert np.all(np.isfinite(fm.X))


def test_goog_level10_v2_live_and_batch_features_are_identical(goog10_tickfile):
    data = tickfile.read(goog10_tickfile)
    fm = compute_features(data, FeatureState(feature_set=2))
    state = FeatureState(feature_set=2)
    state.set_session(session_clock(data.instrument.venue, int(data.ts_event[0])))
    n, dec_ts, rows = _live_rows(data, state, kernels_v2.step, len(fm.ts))
    assert n == len(fm.ts) > 25_000
    assert np.array_equal(dec_ts, fm.ts)
    assert np.array_equal(rows, fm.X)
    assert np.all(np.isfinite(fm.X))
    assert np.array_equal(fm.X[:, :N_FEATURES], compute_features(data).X)
    # Real order flow: every v2 column moves, and the session clock is NASDAQ's (09:30-16:00 ET).
    assert np.all(np.std(fm.X[:, N_FEATURES:], axis=0) > 0)
    tod = fm.X[:, fm.names.index("time_of_day_s")]
    assert 0 <= tod[0] < 600 and tod[-1] <= 23_400
    assert state.v2 is not None and state.v2.ist2[kernels_v2.I2_RING_OVERFLOWS] == 0
