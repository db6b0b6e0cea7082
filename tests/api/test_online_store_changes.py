"""The decision service sees a rematerialization of its Redis online store even when the writer
recorded it in another registry (another host's data directory, a copy): the registry file the
service watches does not change then, the store's own record of its bulk writes does."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pandas as pd
import pytest

from orchestration.core.decisioning.realtime import DecisionService, LedgerReader, StateLoader
from orchestration.core.decisioning.realtime.timestamps import file_stamp
from tests.api.conftest import FEAST_SERVICE, NOW, _materialized_reader


@pytest.fixture
def redis_settings(api_settings, redis_server, monkeypatch):
    import orchestration.core.features.feast_store as feast_store

    monkeypatch.setenv("CAMPAIGN_ONLINE_STORE", "redis")
    monkeypatch.setenv("CAMPAIGN_REDIS_URL", redis_server.url(redis_server.fresh_db()))
    monkeypatch.setattr(feast_store, "FEATURE_SERVICE", FEAST_SERVICE)  # the test's service
    return type(api_settings).from_env()


def _rematerialize_elsewhere(settings, tmp_path, at) -> None:
    """What another host's pipeline does: new snapshot rows, materialized into the same Redis,
    its intervals recorded in its own registry (a copy of ours)."""
    from feast import FeatureStore

    from orchestration.core.features.feast_store import open_feature_store

    source = settings.data_dir / "feast_source" / "api_features.parquet"
    frame = pd.read_parquet(source)
    frame["event_timestamp"] = pd.Timestamp(at).tz_convert("UTC").as_unit("us")
    frame.to_parquet(source)
    config = open_feature_store(settings).config
    elsewhere = tmp_path / "other_host_registry.db"
    shutil.copyfile(settings.feast_dir / "registry.db", elsewhere)
    config.registry.path = str(elsewhere)
    store = FeatureStore(repo_path=str(settings.feature_repo_dir), config=config)
    store.materialize(at - timedelta(seconds=1), at + timedelta(seconds=1))


def test_a_rematerialization_recorded_elsewhere_reloads_the_state(redis_settings, tmp_path):
    _materialized_reader(redis_settings, {})  # customers 1..60, an hour old
    ledger = LedgerReader(redis_settings.gateway_dir / "ledger.db")
    loader = StateLoader(redis_settings, ledger)
    service = DecisionService(redis_settings, loader=loader, ledger=ledger, refresh_seconds=0)
    try:
        before = service.health()["online_store"]
        assert before["sampled"] == 60 and before["oldest_age_hours"] == pytest.approx(1.0)
        assert service.refresh() is False  # nothing moved
        registry = file_stamp(redis_settings.feast_dir / "registry.db")

        _rematerialize_elsewhere(redis_settings, tmp_path, NOW - timedelta(minutes=6))

        assert file_stamp(redis_settings.feast_dir / "registry.db") == registry
        assert service.refresh() is True  # seen through the store's record of its writes
        after = service.health()["online_store"]
        assert after["oldest_age_hours"] == pytest.approx(0.1)
        assert after["newest_feature_timestamp"] > before["newest_feature_timestamp"]
        assert service.refresh() is False  # and only once
    finally:
        service.close()
