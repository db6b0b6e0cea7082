"""The small feature world the online store tests materialize: a few hundred customers, two
snapshots, the project's four feature views (Int64 and Float64 features; customer_attributes as
config/attributes.yaml declares it) plus a test-only view
with the other scalar types (Bool, Float32, Int32, String). Nulls, NaNs, negative and wide
integers, customers missing from one view and a customer missing from all of them are in the
data on purpose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from orchestration.settings import Settings

N_CUSTOMERS = 300
NEWEST = datetime(2026, 3, 2, tzinfo=UTC)
SNAPSHOTS = [NEWEST - timedelta(days=1), NEWEST]
IDS = (np.arange(1, N_CUSTOMERS + 1) * 7919).astype(np.int64)
ONLY_OLDER_SNAPSHOT = set(IDS[-10:-5].tolist())  # engagement: latest row is a day older
NO_CONSENT = set(IDS[-5:].tolist())  # absent from customer_consent altogether
MISSING = 123_456_789  # in no table at all
EXTRAS = "customer_extras"
PROJECT_VIEWS = ["customer_rfm", "customer_engagement", "customer_consent", "customer_attributes"]


def int_column(rng: np.random.Generator, n: int) -> pa.Array:
    values = rng.integers(0, 60, n).astype(object)
    values[rng.random(n) < 0.1] = None
    values[-3:] = [-(2**40), 2**52 - 1, -1]  # negative and wide varints (newest snapshot rows)
    return pa.array(values.tolist(), pa.int64())


def float_column(rng: np.random.Generator, n: int) -> pa.Array:
    values = rng.gamma(2.0, 30.0, n).astype(object)
    values[rng.random(n) < 0.1] = None
    values[-4:] = [float("nan"), 0.0, -0.0, float("inf")]
    return pa.array(values.tolist(), pa.float64(), from_pandas=False)  # keeps NaN apart from null


def table_rows(view: str) -> tuple[list[int], list[datetime]]:
    ids, times = [], []
    for at in SNAPSHOTS:
        for customer in IDS.tolist():
            if view == "customer_consent" and customer in NO_CONSENT:
                continue
            if view == "customer_engagement" and at == NEWEST and customer in ONLY_OLDER_SNAPSHOT:
                continue
            ids.append(customer)
            times.append(at)
    return ids, times


def write_tables(feature_dir: Path, views: dict) -> None:
    rng = np.random.default_rng(11)
    feature_dir.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_VIEWS:
        ids, times = table_rows(name)
        columns = {"customer_id": pa.array(ids, pa.int64())}
        for field in views[name].features:
            is_int = field.dtype.to_value_type().name == "INT64"
            columns[field.name] = (int_column if is_int else float_column)(rng, len(ids))
        columns["event_timestamp"] = pa.array(times, pa.timestamp("us", tz="UTC"))
        pq.write_table(pa.table(columns), feature_dir / f"feat_{name}.parquet")
    ids, times = table_rows(EXTRAS)
    n = len(ids)
    flags = np.where(rng.random(n) < 0.5, True, False).astype(object)
    flags[rng.random(n) < 0.15] = None
    words = np.array([f"w{i}é" for i in range(n)], dtype=object)
    words[rng.random(n) < 0.15] = None
    extras = {
        "customer_id": pa.array(ids, pa.int64()),
        "is_flagged": pa.array(flags.tolist(), pa.bool_()),
        "score_f32": float_column(rng, n),
        "rank_i32": pa.array(
            [
                None if i % 9 == 0 else int(v)
                for i, v in enumerate(rng.integers(-(2**31), 2**31, n))
            ],
            pa.int32(),
        ),
        "label": pa.array(words.tolist(), pa.string()),
        "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
    }
    pq.write_table(pa.table(extras), feature_dir / "extras.parquet")


def extras_view(customer, feature_dir: Path):
    from feast import FeatureView, Field, FileSource
    from feast.data_format import ParquetFormat
    from feast.types import Bool, Float32, Int32, String

    source = FileSource(
        name="extras_source",
        path=str(feature_dir / "extras.parquet"),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
    )
    return FeatureView(
        name=EXTRAS,
        entities=[customer],
        ttl=timedelta(days=2),
        schema=[
            Field(name="is_flagged", dtype=Bool),
            Field(name="score_f32", dtype=Float32),
            Field(name="rank_i32", dtype=Int32),
            Field(name="label", dtype=String),
        ],
        source=source,
        online=True,
    )


def feature_store(settings: Settings, feast_dir: Path, online: dict, engine: str | dict):
    """The project's feature_store.yaml with the online store and batch engine swapped (a
    SQLite store's file is put in ``feast_dir``)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    repo = settings.feature_repo_dir
    raw = yaml.safe_load((repo / "feature_store.yaml").read_text())
    raw["registry"]["path"] = str(feast_dir / "registry.db")
    if "connection_string" not in online:
        online = {**online, "path": str(feast_dir / "online_store.db")}
    raw["online_store"] = online
    raw["batch_engine"] = engine
    raw["materialization"] = {"online_write_batch_size": 64}  # several batches per view
    config = RepoConfig(**raw)
    config.repo_path = repo
    return FeatureStore(repo_path=str(repo), config=config)


def build_world(settings: Settings) -> dict:
    """Write the world's tables under ``settings.features_dir``; its Feast objects by kind."""
    from orchestration.core.features.feast_store import _import_repo_modules

    objects = _import_repo_modules(settings.feature_repo_dir)
    # the real-time view (a push source, written by POST /v1/events) is never materialized
    views = {
        o.name: o for o in objects if type(o).__name__ == "FeatureView" and o.stream_source is None
    }
    customer = next(o for o in objects if type(o).__name__ == "Entity")
    feature_dir = settings.features_dir / "current"
    views[EXTRAS] = extras_view(customer, feature_dir)
    write_tables(feature_dir, views)
    services = [o for o in objects if type(o).__name__ == "FeatureService"]
    service = next(o for o in services if o.name == "uplift_model_v1")
    return {"views": views, "customer": customer, "service": service, "services": services}


def feature_refs(views: dict) -> list[str]:
    return [f"{name}:{f.name}" for name, view in views.items() for f in view.features]


def read(store, features, ids):
    rows = [{"customer_id": int(c)} for c in ids]
    return store.get_online_features(features=features, entity_rows=rows, full_feature_names=True)


def materialize_all(store) -> None:
    store.materialize(SNAPSHOTS[0] - timedelta(seconds=1), NEWEST + timedelta(seconds=1))
