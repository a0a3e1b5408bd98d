import numpy as np
import pytest

from scalper.models.labels import DOWN, FLAT, UNKNOWN, UP, default_dead_zone, direction_labels
from scalper.models.split import time_split

S = 1_000_000_000


def test_direction_labels_use_dead_zone_and_mark_unknown():
    now = np.array([100.0, 100.0, 100.0, 100.0, 100.0])
    later = np.array([101.5, 99.0, 100.5, 98.4, np.nan])
    assert direction_labels(now, later, 1.0).tolist() == [UP, FLAT, FLAT, DOWN, UNKNOWN]


def test_direction_labels_refuse_negative_dead_zone():
    with pytest.raises(ValueError, match="dead_zone_ticks"):
        direction_labels(np.zeros(1), np.zeros(1), -1.0)


def test_default_dead_zone_is_half_the_median_spread():
    assert default_dead_zone(np.array([1.0, 2.0, 3.0, 10.0])) == 1.25


def test_time_split_purges_an_embargo_before_each_boundary():
    ts = np.arange(0, 1000 * S, S // 4, dtype=np.int64)
    sp = time_split(ts, (0.6, 0.2, 0.2), 30 * S)
    assert ts[sp.train].max() < sp.val_start_ns - 30 * S + 1
    assert ts[sp.val].min() >= sp.val_start_ns
    assert ts[sp.val].max() < sp.test_start_ns - 30 * S + 1
    assert ts[sp.test].min() >= sp.test_start_ns
    assert not (sp.train & sp.val).any() and not (sp.val & sp.test).any()
    # labels of the last training row look 30 s ahead and must end before validation starts
    assert ts[sp.train].max() + 30 * S < sp.val_start_ns


def test_time_split_rejects_bad_fractions_and_empty_parts():
    ts = np.arange(0, 100 * S, S, dtype=np.int64)
    with pytest.raises(ValueError, match="sum to 1"):
        time_split(ts, (0.5, 0.2, 0.2), 0)
    with pytest.raises(ValueError, match="empty"):
        time_split(ts, (0.6, 0.2, 0.2), 50 * S)
