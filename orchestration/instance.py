"""The Dagster instance of a deployment: run, event-log and schedule storage by profile.

``local``: the ``dagster.yaml`` in ``DAGSTER_HOME`` (SQLite files there). ``production``: the same
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
    ref = InstanceRef.from_dir(str(home), overrides=instance_overrides(settings))
    return DagsterInstance.from_ref(ref)
