"""Salted hash assignment: stable across runs, close to its share, independent per salt."""

import numpy as np
import pytest

from orchestration.core.common.hashing import in_share, stable_unit_interval


def test_assignment_is_stable_and_close_to_share_on_100k_ids():
    ids = np.arange(1, 100_001)
    first = in_share(ids, 0.05, "control")
    assert np.array_equal(first, in_share(ids, 0.05, "control"))
    assert first.mean() == pytest.approx(0.05, abs=0.01)


def test_different_salts_give_independent_assignments():
    ids = np.arange(1, 100_001)
    a = in_share(ids, 0.5, "campaign_a")
    b = in_share(ids, 0.5, "campaign_b")
    assert (a & b).mean() == pytest.approx(0.25, abs=0.01)


def test_unit_interval_bounds_and_order_independence():
    ids = np.arange(1, 10_001)
    values = stable_unit_interval(ids, "s")
    assert values.min() >= 0 and values.max() < 1
    shuffled = np.random.default_rng(0).permutation(ids)
    assert np.array_equal(stable_unit_interval(shuffled, "s"), values[shuffled - 1])


def test_share_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="between 0 and 1"):
        in_share(np.arange(3), 1.5, "x")
