"""Feast, opened on the configured data directory: apply, point-in-time retrieval, online store.

feast is imported inside the functions (it costs ~12 s cold), so importing this module is free.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pandas as pd

from orchestration.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore

# v2: v1 and the declared customer attributes (feature_repo/customer_feature_services.py)
FEATURE_SERVICE = "uplift_model_v2"
ENTITY_KEY = "customer_id"
TIMESTAMP_COLUMN = "event_timestamp"
# Entity rows per point-in-time join. Feast's offline join keeps, in memory, every feature row
# of an entity dated before its timestamp until it picks the newest: at 10M customers in one
# join the scoring step peaked at 16 GB. Up to this many rows is one join (100k and 1M are).
RETRIEVAL_CHUNK_ROWS = 2_000_000


def open_feature_store(settings: Settings) -> FeatureStore:
    """The Feast store of ``feature_repo/``, with file paths moved under ``settings.data_dir``.

    The online store is ``settings.online_store``: ``sqlite`` keeps feature_store.yaml's (the
    embedded SQLite file, its path moved under the data directory; a store configured there
    otherwise, e.g. Redis, is left as configured); ``redis`` replaces it with the bulk-writing
    Redis store of ``redis_online_store.py`` at ``settings.redis_url``. A SQL registry in
    feature_store.yaml is left as configured.
    The spark profile replaces the offline store with Feast's Spark offline store (contrib) on the
    pipeline's Spark session, over the same published files (the feature repo declares them as
    ``SparkSource`` in that profile).
    The production profile defaults to ``redis``; the offline side stays the DuckDB store over
    the published Parquet version (write-audit-publish: Feast must not read a feature table
    before its gates passed, and the warehouse table is rebuilt before they run).
    """
    from feast import FeatureStore
    from feast.repo_config import load_repo_config

    repo_dir = settings.feature_repo_dir
    config = load_repo_config(repo_dir, repo_dir / "feature_store.yaml")
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    registry = config.registry
    if getattr(registry, "registry_type", "file") == "file":
        registry.path = str(settings.feast_dir / "registry.db")
    if settings.online_store == "redis":
        config.online_config = redis_online_config(settings)
    if settings.is_spark:
        config.offline_config = spark_offline_config(settings)
        config._offline_store = None  # built from offline_config on first use
    online = config.online_store
    online_type = str(getattr(online, "type", ""))
    if online_type == "sqlite" or online_type.endswith("SqliteOnlineStore"):
        online.path = str(settings.feast_dir / "online_store.db")
    return FeatureStore(repo_path=str(repo_dir), config=config)


def redis_online_config(settings: Settings) -> dict[str, str]:
    """The ``online_store`` block for the Redis server at ``settings.redis_url``."""
    from orchestration.core.features.redis_online_store import (
        STORE_TYPE,
        feast_connection_string,
    )

    return {"type": STORE_TYPE, "connection_string": feast_connection_string(settings.redis_url)}


def spark_offline_config(settings: Settings) -> dict[str, object]:
    """The ``offline_store`` block of the spark profile: Feast's Spark store, our session's
    configuration (the store reuses the process's session when one is running)."""
    from orchestration.core.common.spark import spark_conf

    return {"type": "spark", "spark_conf": spark_conf(settings)}


def online_store_location(settings: Settings) -> str:
    """Where the online features are, for metadata and reports (no password)."""
    if settings.online_store == "redis":
        parts = urlsplit(settings.redis_url)
        return (
            f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}/{parts.path.strip('/') or 0}"
        )
    return str(settings.feast_dir / "online_store.db")


def _import_repo_modules(repo_dir: Path) -> list[object]:
    """Import the feature repo's modules afresh and return every object they define.

    The source paths are resolved from CAMPAIGN_DATA_DIR when a module is imported, so modules
    cached from an earlier call (another data directory) are dropped first.
    """
    repo_dir = repo_dir.resolve()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().parent == repo_dir:
            del sys.modules[name]
    if str(repo_dir) not in sys.path:
        sys.path.insert(0, str(repo_dir))
    objects: list[object] = []
    for path in sorted(repo_dir.glob("*.py")):
        module = importlib.import_module(path.stem)
        for value in vars(module).values():
            if not any(value is seen for seen in objects):
                objects.append(value)
    return objects


@dataclass(frozen=True)
class AppliedDefinitions:
    entities: list[str]
    feature_views: list[str]
    feature_services: list[str]
    data_sources: dict[str, str]


def apply_feature_definitions(settings: Settings) -> AppliedDefinitions:
    """``feast apply`` in-process: register the repo's objects and delete the ones removed."""
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource
    from feast.repo_contents import RepoContents
    from feast.repo_operations import extract_objects_for_apply_delete

    objects = _import_repo_modules(settings.feature_repo_dir)
    contents = RepoContents(
        projects=[],
        data_sources=[o for o in objects if isinstance(o, DataSource)],
        feature_views=[o for o in objects if isinstance(o, FeatureView)],
        on_demand_feature_views=[],
        stream_feature_views=[],
        label_views=[],
        entities=[o for o in objects if isinstance(o, Entity)],
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        permissions=[],
    )
    store = open_feature_store(settings)
    to_apply, to_delete, _, _ = extract_objects_for_apply_delete(
        store.project, store.registry, contents
    )
    store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return AppliedDefinitions(
        entities=sorted(e.name for e in contents.entities),
        feature_views=sorted(v.name for v in contents.feature_views),
        feature_services=sorted(s.name for s in contents.feature_services),
        data_sources={v.name: v.batch_source.path for v in contents.feature_views},
    )


def feature_names(settings: Settings, service: str = FEATURE_SERVICE) -> list[str]:
    """The feature columns a service returns, in a stable order (entity columns excluded)."""
    store = open_feature_store(settings)
    fs = store.get_feature_service(service)
    return [f.name for projection in fs.feature_view_projections for f in projection.features]


def historical_features(
    settings: Settings,
    entity_df: pd.DataFrame,
    service: str = FEATURE_SERVICE,
    chunk_rows: int = RETRIEVAL_CHUNK_ROWS,
) -> pd.DataFrame:
    """Point-in-time correct features for each (customer_id, event_timestamp) row.

    Used for both training (timestamps = past exposures) and bulk scoring (timestamp = decision
    time): the same definitions on both sides. Rows keep the entity frame's extra columns; their
    order is not kept. More than ``chunk_rows`` rows are joined ``chunk_rows`` at a time (each
    row's features depend on that row alone, so the result is the same).
    """
    missing = {ENTITY_KEY, TIMESTAMP_COLUMN} - set(entity_df.columns)
    if missing:
        raise ValueError(
            f"entity frame lacks {sorted(missing)}; it needs customer_id and event_timestamp"
        )
    store = open_feature_store(settings)
    frame = entity_df.copy()
    frame[TIMESTAMP_COLUMN] = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True)
    starts = range(0, max(len(frame), 1), chunk_rows)
    parts = [_joined(settings, store, frame.iloc[i : i + chunk_rows], service) for i in starts]
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _joined(
    settings: Settings, store: FeatureStore, frame: pd.DataFrame, service: str
) -> pd.DataFrame:
    """One point-in-time join of ``frame``'s rows (see ``historical_features``)."""
    with _entities_for_the_store(settings, frame) as entities:
        job = store.get_historical_features(
            entity_df=entities,
            features=store.get_feature_service(service),
            full_feature_names=False,
        )
        return _as_utc_like(job.to_df(), frame)


def _as_utc_like(result: pd.DataFrame, entities: pd.DataFrame) -> pd.DataFrame:
    """The entity frame's UTC timestamp columns stay UTC (Spark hands them back naive, in its
    session time zone, which the spark profile pins to UTC)."""
    for column in entities.columns:
        aware = getattr(entities[column].dtype, "tz", None) is not None
        if aware and column in result and getattr(result[column].dtype, "tz", None) is None:
            result[column] = result[column].dt.tz_localize("UTC")
    return result


@contextmanager
def _entities_for_the_store(
    settings: Settings, frame: pd.DataFrame
) -> Iterator[pd.DataFrame | str]:
    """The entity frame as the offline store takes it best. Feast's Spark store turns a pandas
    frame into a Spark frame held in the driver (a local relation that the optimizer copies per
    join): at 1M customers that ran the driver out of heap. On Spark the entities are written to
    a Parquet file under the Spark scratch directory and handed over as a query of it (removed
    afterwards); elsewhere the frame itself."""
    if not settings.is_spark:
        yield frame
        return
    scratch = settings.spark_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"entities-{uuid.uuid4().hex}.parquet"
    frame.to_parquet(path, index=False)
    try:
        yield f"select * from parquet.`{path}`"
    finally:
        path.unlink(missing_ok=True)


def materialize_online(settings: Settings, start: datetime, end: datetime) -> None:
    """Load the snapshot rows in [start, end) into the online store (latest row per customer).

    Real-time views (push sources, written by ``POST /v1/events``) are left out: they have no
    batch rows to load, and materializing them would overwrite what was pushed."""
    from feast.data_source import PushSource

    store = open_feature_store(settings)
    views = [
        v.name for v in store.list_feature_views() if not isinstance(v.stream_source, PushSource)
    ]
    store.materialize(start_date=start, end_date=end, feature_views=views)


def online_features(
    settings: Settings, customer_ids: list[int], service: str = FEATURE_SERVICE
) -> pd.DataFrame:
    """Per-request lookup from the online store (what a real-time decision would see)."""
    store = open_feature_store(settings)
    response = store.get_online_features(
        features=store.get_feature_service(service),
        entity_rows=[{ENTITY_KEY: int(c)} for c in customer_ids],
    )
    return response.to_df()
