"""Shared test set-up: every test that touches data gets its own data directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from dagster import DagsterInstance

# Tests never read the developer's data/ or MLflow store by accident.
os.environ.setdefault("CAMPAIGN_DATA_DIR", "/nonexistent-set-by-fixture")
# A fixed key for the recipient refs, so no test warns about the public development key
# (tests of the fallback itself delete it with monkeypatch).
os.environ.setdefault("CAMPAIGN_PSEUDONYM_KEY", "test-only-pseudonym-key")


def local_instance(home: Path) -> DagsterInstance:
    """The instance ``campaign run`` opens for ``DAGSTER_HOME=home`` on the local profile
    (Dagster's SQLite files under ``home``, the event log through the pooled storage), so the
    pipeline tests run on the storage a user's runs get."""
    from orchestration.instance import dagster_instance
    from orchestration.settings import Settings

    return dagster_instance(Settings.from_env(), home)


def point_at(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Point the whole system (settings, dbt, Feast, MLflow) at ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("CAMPAIGN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}")
    monkeypatch.delenv("CAMPAIGN_SENDS_DISABLED", raising=False)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    point_at(monkeypatch, path)
    return path


# --- a real redis-server for the tests of the Redis online store --------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """Debian's redis-server on 127.0.0.1 (a free port, no persistence), for the whole session.

    Missing, it skips the tests that need it on a developer machine and fails them in CI
    (CI=true), where `make test` installs it first.
    """
    from tests.support.redis_server import INSTALL_HINT, RedisServer, redis_server_binary

    if redis_server_binary() is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_server) -> int:
    """A database number of the session's server that no other test has used (emptied)."""
    return redis_server.fresh_db()
