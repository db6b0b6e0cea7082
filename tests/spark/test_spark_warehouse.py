"""The Spark warehouse copies a feature table into a feature version without the driver holding it.

A feature table is customers x snapshot days (millions of rows at 1M customers); collecting it
into the driver lost the task result at 1M customers. The copy is written by Spark, one Parquet
file, rows in key order, the same rows and values as the table (nulls included), timestamps as
UTC instants, and equal bytes for equal content (the feature version's digest relies on it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (make setup-spark)")

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROWS = 5_000


def _table() -> pd.DataFrame:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        {
            "customer_id": (i * 7919) % ROWS,  # not in key order
            "event_timestamp": start + timedelta(days=i % 3),
            "count_orders_30d": None if i % 11 == 0 else i % 5,
            "sum_amount_90d": float(i) / 3,
        }
        for i in range(ROWS)
    ]
    return pd.DataFrame(rows)


def test_a_feature_table_is_copied_by_spark_in_key_order(data_dir, monkeypatch, tmp_path):
    from orchestration.core.common.spark import spark_session
    from orchestration.core.world.warehouse import SparkWarehouse
    from orchestration.settings import Settings

    monkeypatch.setenv("CAMPAIGN_PROFILE", "spark")
    settings = Settings.from_env()
    warehouse = SparkWarehouse(settings)
    table = _table()
    spark = spark_session(settings)
    # several part files, as dbt-spark writes them
    spark.createDataFrame(table).repartition(4).write.parquet(
        str(warehouse.root / "feat_customer_rfm")
    )

    version = tmp_path / "version"
    version.mkdir()
    first, second = version / "first.parquet", version / "second.parquet"
    warehouse.export_parquet("feat_customer_rfm", first)
    warehouse.export_parquet("feat_customer_rfm", second)

    assert sorted(p.name for p in version.iterdir()) == ["first.parquet", "second.parquet"]
    copied = pq.read_table(first)
    assert str(copied.schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"
    frame = copied.to_pandas()
    keys = ["customer_id", "event_timestamp"]
    assert frame[keys].equals(frame[keys].sort_values(keys).reset_index(drop=True))
    expected = table.sort_values(keys).reset_index(drop=True)
    assert frame["customer_id"].tolist() == expected["customer_id"].tolist()
    assert frame["count_orders_30d"].isna().sum() == expected["count_orders_30d"].isna().sum()
    pd.testing.assert_series_equal(
        frame["sum_amount_90d"], expected["sum_amount_90d"], check_names=False
    )
    assert first.read_bytes() == second.read_bytes()
