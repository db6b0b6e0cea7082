"""Source freshness: the newest row's age against the window."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from orchestration.core.world.freshness import measure_freshness

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _orders(raw, newest):
    raw.mkdir(exist_ok=True)
    pd.DataFrame(
        {
            "order_id": [1, 2],
            "customer_id": [1, 1],
            "amount": [1.0, 2.0],
            "ordered_at": [pd.Timestamp(newest - timedelta(days=3)), pd.Timestamp(newest)],
        }
    ).to_parquet(raw / "orders.parquet")


def test_fresh_data_passes(tmp_path):
    _orders(tmp_path, NOW - timedelta(hours=2))
    result = measure_freshness(tmp_path, "orders", 24, now=NOW)
    assert result.is_fresh and result.lag_hours == pytest.approx(2)


def test_stale_data_fails_with_its_lag(tmp_path):
    _orders(tmp_path, NOW - timedelta(days=10))
    result = measure_freshness(tmp_path, "orders", 24, now=NOW)
    assert not result.is_fresh and result.lag_hours == pytest.approx(240)


def test_missing_table_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="orders"):
        measure_freshness(tmp_path, "orders", 24, now=NOW)
