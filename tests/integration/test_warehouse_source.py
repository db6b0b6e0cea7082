"""Raw tables read from a warehouse schema (CAMPAIGN_DATASET=warehouse, a DuckDB file now).

The example RCT's raw tables are loaded into schema ``raw`` of a DuckDB file; the raw step reads
them from there, validates them like files and lands them. A table with a bad attribute value
stops the landing with the same message a file would get.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import materialize

from orchestration.settings import PROJECT_DIR, Settings, SettingsError

EXAMPLE = PROJECT_DIR / "examples" / "rct"


def _warehouse(tmp_path: Path, edit=None) -> tuple[Path, pd.Timestamp]:
    """A DuckDB file whose schema ``raw`` holds the example's contract tables."""
    spec = importlib.util.spec_from_file_location("map_rct", EXAMPLE / "map_rct.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["map_rct"] = module
    spec.loader.exec_module(module)
    tables, clock = module.map_rct(pd.read_csv(EXAMPLE / "rct.csv"))
    staged = tmp_path / "staged"
    module.write_raw(tables, staged)
    database = tmp_path / "source.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema raw")
    for file in sorted(staged.glob("*.parquet")):
        con.execute(f"create table raw.{file.stem} as select * from read_parquet('{file}')")
    if edit:
        con.execute(edit)
    con.close()
    return database, clock


def _land(monkeypatch, tmp_path: Path, database: Path, clock: pd.Timestamp):
    from orchestration.defs.raw_data import raw_data
    from orchestration.resources import CampaignSettings

    data_dir = tmp_path / "data"
    monkeypatch.setenv("CAMPAIGN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CAMPAIGN_DATASET", "warehouse")
    monkeypatch.setenv("CAMPAIGN_RAW_DUCKDB", str(database))
    monkeypatch.setenv("CAMPAIGN_ATTRIBUTES_FILE", str(EXAMPLE / "attributes.yaml"))
    monkeypatch.setenv("CAMPAIGN_WORLD_NOW", clock.isoformat())
    result = materialize(
        [raw_data], resources={"settings": CampaignSettings()}, raise_on_error=False
    )
    return result, data_dir


def test_the_raw_step_reads_the_tables_of_a_duckdb_schema(monkeypatch, tmp_path):
    database, clock = _warehouse(tmp_path)
    result, data_dir = _land(monkeypatch, tmp_path, database, clock)
    assert result.success
    landed = pd.read_parquet(data_dir / "raw" / "customer_attributes.parquet")
    assert len(landed) == len(pd.read_csv(EXAMPLE / "rct.csv")) and "plan" in landed.columns
    metadata = result.asset_materializations_for_node("raw_data")[0].metadata
    assert metadata["raw_source"].value == f"duckdb:{database}#raw"
    assert metadata["attributes"].value == "plan, loyalty_member, tenure_months, age_band"


def test_a_bad_attribute_in_the_warehouse_table_stops_the_landing(monkeypatch, tmp_path):
    database, clock = _warehouse(
        tmp_path, edit="update raw.customer_attributes set plan = 'gold' where customer_id = 3"
    )
    result, _ = _land(monkeypatch, tmp_path, database, clock)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)
    assert "raw/customer_attributes.parquet: column 'plan' has 1 value(s) outside" in message
    assert "'gold' at row 2 (customer_id=3" in message


def test_the_warehouse_dataset_needs_its_file(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_DATASET", "warehouse")
    monkeypatch.delenv("CAMPAIGN_RAW_DUCKDB", raising=False)
    with pytest.raises(SettingsError, match="CAMPAIGN_RAW_DUCKDB"):
        Settings.from_env()


def test_a_missing_warehouse_file_is_named(tmp_path):
    from orchestration.core.world.warehouse_source import WarehouseSourceError, export_raw_schema

    with pytest.raises(WarehouseSourceError, match="no such DuckDB file"):
        export_raw_schema(tmp_path / "nope.duckdb", "raw", tmp_path / "raw")
