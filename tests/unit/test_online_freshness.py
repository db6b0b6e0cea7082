"""Online freshness counted from event times: missing values and old values are both stale."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from orchestration.core.features.online_freshness import freshness_from_event_times

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
HOUR = 3600


def _stamps(**columns):
    return pd.DataFrame(columns)


def test_a_store_holding_nothing_counts_every_customer_missing():
    # Every event time 0 (no value), in many rows: the case that once overflowed inside pandas.
    rows = 5_000
    result = freshness_from_event_times(
        _stamps(a__ts=np.zeros(rows), b__ts=[None] * rows), rows, NOW, 24
    )
    assert (result.sampled, result.stale, result.missing) == (rows, rows, rows)
    assert result.oldest_age_hours is None
    assert result.stale_share == 1.0


def test_old_and_missing_values_are_stale_and_fresh_ones_are_not():
    now_s = NOW.timestamp()
    stamps = _stamps(
        a__ts=[now_s - 1 * HOUR, now_s - 30 * HOUR, now_s - 2 * HOUR, 0],
        b__ts=[now_s - 3 * HOUR, now_s - 1 * HOUR, 0, now_s - 1 * HOUR],
    )
    result = freshness_from_event_times(stamps, 4, NOW, 24)
    # row 0 fresh; row 1 one value 30 h old; rows 2 and 3 each miss a value
    assert (result.stale, result.missing) == (3, 2)
    assert result.oldest_age_hours == 30.0


def test_no_feature_columns_means_everything_is_stale():
    result = freshness_from_event_times(pd.DataFrame(), 7, NOW, 24)
    assert (result.stale, result.missing) == (7, 7)
