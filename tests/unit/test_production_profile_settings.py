"""The production profile is configuration only: its settings, and the one warehouse reader."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestration.core.features.redis_online_store import feast_connection_string
from orchestration.core.world.warehouse import (
    ParquetExports,
    WarehouseTableMissing,
    open_warehouse,
)
from orchestration.instance import instance_overrides
from orchestration.settings import Settings, SettingsError, without_password

SERVER = "postgresql://campaign:s3cret@127.0.0.1:55432"


@pytest.fixture
def production_env(data_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CAMPAIGN_PROFILE", "production")
    monkeypatch.setenv("CAMPAIGN_POSTGRES_URL", SERVER)
    monkeypatch.setenv("CAMPAIGN_REDIS_URL", "redis://127.0.0.1:56379/0")
    return monkeypatch


def test_local_is_the_default_profile(data_dir):
    s = Settings.from_env()
    assert s.profile == "local" and s.dbt_target == "dev"
    assert s.mlflow_tracking_uri.startswith("sqlite:")
    assert instance_overrides(s) == {}
    assert isinstance(open_warehouse(s), ParquetExports)


def test_production_profile_points_every_store_at_its_server(production_env):
    s = Settings.from_env()
    assert s.dbt_target == "postgres"
    assert s.mlflow_tracking_uri == f"{SERVER}/mlflow"
    assert instance_overrides(s) == {"storage": {"postgres": {"postgres_url": f"{SERVER}/dagster"}}}
    assert s.postgres_database("warehouse") == f"{SERVER}/warehouse"
    assert feast_connection_string(s.redis_url) == "127.0.0.1:56379,db=0"


def test_production_without_its_servers_refuses_to_start(data_dir, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_PROFILE", "production")
    monkeypatch.delenv("CAMPAIGN_POSTGRES_URL", raising=False)
    monkeypatch.delenv("CAMPAIGN_REDIS_URL", raising=False)
    with pytest.raises(SettingsError) as error:
        Settings.from_env()
    message = str(error.value)
    assert "CAMPAIGN_POSTGRES_URL and CAMPAIGN_REDIS_URL" in message
    assert "make services-up" in message and "\n" not in message


def test_a_bad_server_url_is_named_without_its_password(production_env):
    production_env.setenv("CAMPAIGN_POSTGRES_URL", "mysql://campaign:s3cret@db:3306")
    with pytest.raises(SettingsError) as error:
        Settings.from_env()
    assert "CAMPAIGN_POSTGRES_URL" in str(error.value)
    assert "s3cret" not in str(error.value)
    assert without_password(SERVER) == "postgresql://campaign:***@127.0.0.1:55432"


def test_the_reader_reads_a_mart_by_name_with_columns_and_a_predicate(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    pd.DataFrame({"customer_id": [1, 2, 3], "region": ["n", "s", "n"]}).to_parquet(
        exports / "dim_customers.parquet"
    )
    warehouse = ParquetExports(exports)
    assert warehouse.marts() == ["dim_customers"]
    north = warehouse.read_table("dim_customers", columns=["customer_id"], where="region = 'n'")
    assert north["customer_id"].tolist() == [1, 3]
    assert list(warehouse.read_table("dim_customers").columns) == ["customer_id", "region"]


def test_a_mart_not_built_yet_is_a_clear_error(tmp_path):
    with pytest.raises(WarehouseTableMissing, match="fct_orders is not built.*dbt build"):
        ParquetExports(tmp_path).read_table("fct_orders")
