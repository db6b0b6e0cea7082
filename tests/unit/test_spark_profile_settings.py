"""The spark profile is configuration only: its settings, the Spark reader's choice and its
errors, and the Spark session's configuration (none of these start a JVM)."""

from __future__ import annotations

import os
import sys

import pytest

from orchestration.core.common.spark import spark_conf
from orchestration.core.world.warehouse import (
    ParquetExports,
    SparkWarehouse,
    WarehouseTableMissing,
    open_warehouse,
)
from orchestration.instance import instance_overrides
from orchestration.settings import Settings, SettingsError


@pytest.fixture
def spark_env(data_dir, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_PROFILE", "spark")
    return monkeypatch


def test_spark_profile_builds_with_dbt_spark_and_reads_with_spark(spark_env, data_dir):
    s = Settings.from_env()
    assert s.is_spark and not s.is_production
    assert s.dbt_target == "spark"
    assert s.spark_master == "local[2]"
    # Dagster, MLflow and the online store stay embedded
    assert instance_overrides(s) == {}
    assert s.mlflow_tracking_uri.startswith("sqlite:")
    assert s.online_store == "sqlite"
    warehouse = open_warehouse(s)
    assert isinstance(warehouse, SparkWarehouse)
    assert warehouse.root == data_dir.resolve() / "spark" / "warehouse" / "analytics.db"


def test_other_profiles_do_not_use_spark(data_dir):
    s = Settings.from_env()
    assert s.dbt_target == "dev" and not s.is_spark
    assert isinstance(open_warehouse(s), ParquetExports)


def test_a_cluster_is_its_master_url(spark_env):
    spark_env.setenv("CAMPAIGN_SPARK_MASTER", "spark://10.0.0.5:7077")
    spark_env.setenv("CAMPAIGN_SPARK_DRIVER_MEMORY_GB", "6")
    conf = spark_conf(Settings.from_env())
    assert conf["spark.master"] == "spark://10.0.0.5:7077"
    assert conf["spark.driver.memory"] == "6g"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    # the UDF's workers run this interpreter, so they import this project and its packages
    assert conf["spark.pyspark.python"] == sys.executable


def test_an_unknown_profile_names_the_choices(data_dir, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_PROFILE", "snowflake")
    with pytest.raises(SettingsError) as error:
        Settings.from_env()
    assert "one of local, production, spark" in str(error.value)


def test_an_unbuilt_spark_table_says_to_run_the_build(spark_env, data_dir):
    warehouse = open_warehouse(Settings.from_env())
    assert warehouse.marts() == []
    assert not warehouse.has_table("dim_customers")
    # an empty directory (a build that died before writing) is not a table either
    (warehouse.root / "dim_customers").mkdir(parents=True)
    assert not warehouse.has_table("dim_customers")
    with pytest.raises(WarehouseTableMissing) as error:
        warehouse.read_table("dim_customers")
    assert "analytics.dim_customers" in str(error.value)
    assert "target spark" in str(error.value)


def test_the_driver_gets_a_quarter_of_the_machine_and_exits_when_out_of_heap(spark_env):
    """With local[N] the executors run in the driver: 2 GB ran out of heap in Feast's retrieval
    at 1M customers, and the out-of-memory thread left the pipeline waiting forever."""
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    spark_env.delenv("CAMPAIGN_SPARK_DRIVER_MEMORY_GB", raising=False)
    conf = spark_conf(Settings.from_env())
    expected = int(max(min(machine / 4, 16), 2))
    assert conf["spark.driver.memory"] == f"{expected}g"
    assert "-XX:+ExitOnOutOfMemoryError" in conf["spark.driver.extraJavaOptions"].split()
