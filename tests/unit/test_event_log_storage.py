"""The pooled event log writes Dagster's own files (the stock storage, as the UI uses it, reads
every event back), keeps only a few files open, survives a wipe, and is what the local instance
uses unless DAGSTER_HOME's dagster.yaml chooses its storage itself."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from orchestration.event_log_storage import SHARDS_KEPT_OPEN, PooledSqliteEventLogStorage
from orchestration.instance import dagster_instance
from orchestration.settings import Settings


def _materialization(run_id: str, asset: str) -> EventLogEntry:
    event = DagsterEvent(
        DagsterEventType.ASSET_MATERIALIZATION.value,
        "job",
        event_specific_data=StepMaterializationData(AssetMaterialization(AssetKey([asset]))),
    )
    return EventLogEntry(
        error_info=None,
        level=20,
        user_message="",
        run_id=run_id,
        timestamp=time.time(),
        dagster_event=event,
        job_name="job",
    )


def test_the_stock_storage_reads_every_event_the_pooled_one_wrote(tmp_path: Path) -> None:
    pooled = PooledSqliteEventLogStorage(str(tmp_path))
    for i in range(25):
        pooled.store_event(_materialization("run-a", f"asset_{i % 5}"))
    stock = SqliteEventLogStorage(str(tmp_path))
    assert len(stock.get_records_for_run("run-a", limit=100).records) == 25
    latest = stock.get_latest_materialization_events([AssetKey("asset_3")])
    assert latest[AssetKey("asset_3")] is not None  # the cross-run index shard got them too
    pooled.dispose()
    stock.dispose()


def test_only_the_most_recent_shards_stay_open(tmp_path: Path) -> None:
    pooled = PooledSqliteEventLogStorage(str(tmp_path))
    for run in range(SHARDS_KEPT_OPEN * 3):
        pooled.store_event(_materialization(f"run-{run}", "asset"))
    assert len(pooled._engines) == SHARDS_KEPT_OPEN
    assert "index" in pooled._engines  # every materialization writes it: never the oldest
    assert len(SqliteEventLogStorage(str(tmp_path)).get_records_for_run("run-0").records) == 1
    pooled.dispose()
    assert not pooled._engines


def test_a_wipe_closes_the_files_it_deletes(tmp_path: Path) -> None:
    pooled = PooledSqliteEventLogStorage(str(tmp_path))
    pooled.store_event(_materialization("run-a", "asset"))
    pooled.wipe()
    assert not (tmp_path / "run-a.db").exists()
    pooled.store_event(_materialization("run-a", "asset"))  # a new file, not the deleted inode
    assert (tmp_path / "run-a.db").exists()
    assert len(SqliteEventLogStorage(str(tmp_path)).get_records_for_run("run-a").records) == 1
    pooled.dispose()


@pytest.fixture
def local_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.delenv("CAMPAIGN_PROFILE", raising=False)
    monkeypatch.setenv("CAMPAIGN_DATA_DIR", str(tmp_path / "data"))
    return Settings.from_env()


def test_the_local_instance_writes_through_the_pooled_storage(
    tmp_path: Path, local_settings: Settings
) -> None:
    home = tmp_path / "dagster_home"
    instance = dagster_instance(local_settings, home)
    try:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert Path(instance.event_log_storage._base_dir) == home / "history" / "runs"
    finally:
        instance.dispose()


def test_a_dagster_yaml_that_chooses_its_storage_is_obeyed(
    tmp_path: Path, local_settings: Settings
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "event_log_storage:\n"
        "  module: dagster._core.storage.event_log\n"
        "  class: SqliteEventLogStorage\n"
        f"  config:\n    base_dir: {tmp_path / 'elsewhere'}\n"
    )
    instance = dagster_instance(local_settings, home)
    try:
        assert type(instance.event_log_storage) is SqliteEventLogStorage
        assert Path(instance.event_log_storage._base_dir) == tmp_path / "elsewhere"
    finally:
        instance.dispose()
