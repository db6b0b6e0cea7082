"""Feast over a staged, unpublished feature version: point-in-time retrieval against its files.

The live Feast store reads only ``features/current`` (write-audit-publish). A retrain on a
candidate version (the way out of a drift block) must see that version's files with the same
point-in-time semantics, without publishing it and without touching the live registry or the
online store. So this module opens a *scratch* Feast store: the repo's own objects (imported
afresh, exactly what ``feast apply`` registers), whose file sources are moved from
``<data>/features/current/<table>.parquet`` onto ``<data>/features/versions/<version>/<table>``;
its registry and online store live in a temporary directory that is deleted afterwards; the
offline store is the configured one (DuckDB). Feast then does the point-in-time join as for the
live store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from orchestration.core.features.feast_store import (
    ENTITY_KEY,
    FEATURE_SERVICE,
    TIMESTAMP_COLUMN,
    _import_repo_modules,
    spark_offline_config,
)
from orchestration.core.features.publishing import FeatureVersion
from orchestration.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore


def repoint_file_sources(objects: list[object], published_dir: Path, version_dir: Path) -> dict:
    """Move every file source under ``published_dir`` onto the same file in ``version_dir``.

    Returns ``{source name: new path}``. Raises when a feature view would still read a file
    outside the version (a training set mixing versions would be silently wrong).
    """
    from feast import FeatureView, PushSource

    published_dir, version_dir = Path(published_dir), Path(version_dir)
    moved: dict[str, str] = {}
    for source in (o for o in objects if _file_options(o) is not None):
        path = Path(source.path)
        if path.parent == published_dir:
            target = version_dir / path.name
            if not target.exists():
                raise FileNotFoundError(f"feature version {version_dir.name} lacks {path.name}")
            _set_path(source, str(target))
            moved[source.name] = str(target)
    stray = {
        view.name: view.batch_source.path
        for view in (o for o in objects if isinstance(o, FeatureView))
        if _file_options(view.batch_source) is not None
        # a real-time view (written by push, in no feature service) reads no feature version
        and not isinstance(view.stream_source, PushSource)
        and Path(view.batch_source.path).parent != version_dir
    }
    if stray:
        raise ValueError(f"feature views not reading version {version_dir.name}: {stray}")
    return moved


def _file_options(source: object):
    """The options holding a file source's path: a ``FileSource``'s, or in the spark profile a
    ``SparkSource``'s over a file; None for any other object."""
    from feast import FileSource

    if isinstance(source, FileSource):
        return source.file_options
    options = getattr(source, "spark_options", None)
    return options if options is not None and getattr(options, "path", None) else None


def _set_path(source: object, path: str) -> None:
    from feast import FileSource

    if isinstance(source, FileSource):
        source.file_options.uri = path
    else:
        source.spark_options.path = path


def _scratch_store(settings: Settings, scratch: Path) -> FeatureStore:
    """The repo's Feast configuration with the registry and the online store in ``scratch``."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig, load_repo_config

    repo_dir = settings.feature_repo_dir
    base = load_repo_config(repo_dir, repo_dir / "feature_store.yaml")
    config = RepoConfig(
        project=base.project,
        provider=base.provider,
        registry={"registry_type": "file", "path": str(scratch / "registry.db")},
        online_store={"type": "sqlite", "path": str(scratch / "online_store.db")},
        offline_store=spark_offline_config(settings) if settings.is_spark else base.offline_store,
        entity_key_serialization_version=base.entity_key_serialization_version,
    )
    return FeatureStore(repo_path=str(repo_dir), config=config)


def candidate_historical_features(
    settings: Settings,
    version: FeatureVersion,
    entity_df: pd.DataFrame,
    service: str = FEATURE_SERVICE,
) -> pd.DataFrame:
    """Point-in-time correct features of ``version`` for each (customer_id, event_timestamp).

    The same feature service and the same Feast join as ``feast_store.historical_features``, over
    the candidate's files instead of ``current``.
    """
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    missing = {ENTITY_KEY, TIMESTAMP_COLUMN} - set(entity_df.columns)
    if missing:
        raise ValueError(
            f"entity frame lacks {sorted(missing)}; it needs customer_id and event_timestamp"
        )
    objects = _import_repo_modules(settings.feature_repo_dir)
    repoint_file_sources(objects, settings.features_dir / "current", version.path)
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="candidate-", dir=settings.feast_dir) as tmp:
        store = _scratch_store(settings, Path(tmp))
        store.apply(
            [
                o
                for o in objects
                if isinstance(o, Entity | DataSource | FeatureView | FeatureService)
            ]
        )
        frame = entity_df.copy()
        frame[TIMESTAMP_COLUMN] = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True)
        job = store.get_historical_features(
            entity_df=frame, features=store.get_feature_service(service), full_feature_names=False
        )
        return job.to_df()
    # (the moved sources live only in these objects: the live store's next apply imports the
    # repo afresh and sees the published paths)
