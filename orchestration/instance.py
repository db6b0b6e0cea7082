"""The Dagster instance of a deployment: run, event-log and schedule storage by profile.

``local``: the ``dagster.yaml`` in ``DAGSTER_HOME`` (SQLite files there), with the event log
written through one kept-open engine per file (:mod:`orchestration.event_log_storage`: the same
files, a connection per file instead of per event). ``production``: the same
file with its storage moved onto the ``dagster`` database of ``CAMPAIGN_POSTGRES_URL``
(dagster-postgres), so the CLI, the tests and any script get Postgres run history from the
settings alone. The Dagster UI and daemon read ``dagster.production.yaml`` instead (copied into
their ``DAGSTER_HOME``; it takes the URL from ``CAMPAIGN_DAGSTER_POSTGRES_URL``, printed by
``scripts/services.sh env``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orchestration.settings import PROJECT_DIR, Settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

PRODUCTION_DAGSTER_YAML = PROJECT_DIR / "dagster.production.yaml"


def instance_overrides(settings: Settings) -> dict[str, object]:
    """What the profile changes in DAGSTER_HOME's dagster.yaml (nothing for ``local``)."""
    if not settings.is_production:
        return {}
    return {"storage": {"postgres": {"postgres_url": settings.postgres_database("dagster")}}}


def dagster_instance(settings: Settings, home: Path) -> DagsterInstance:
    """The persistent instance of ``home`` (DAGSTER_HOME) for the configured profile."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    overrides = instance_overrides(settings) or _pooled_event_log(home)
    ref = InstanceRef.from_dir(str(home), overrides=overrides)
    return DagsterInstance.from_ref(ref)


def _pooled_event_log(home: Path) -> dict[str, object]:
    """Dagster's own event-log directory under ``home``, through the pooled SQLite storage,
    unless ``home``'s dagster.yaml chose its storage itself."""
    import yaml

    config_file = home / "dagster.yaml"
    config = (yaml.safe_load(config_file.read_text()) if config_file.exists() else None) or {}
    if {"storage", "event_log_storage", "run_storage", "schedule_storage"} & set(config):
        return {}
    return {
        "event_log_storage": {
            "module": "orchestration.event_log_storage",
            "class": "PooledSqliteEventLogStorage",
            "config": {"base_dir": str(home / "history" / "runs")},
        }
    }
