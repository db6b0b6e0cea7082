"""Batch sources: the published feature tables (Parquet) that dbt builds and the pipeline publishes.

The pipeline writes each feature version to its own directory and then points
``<data>/features/current`` at it (write-audit-publish), so Feast always reads the last version
that passed the gates.

The way out of a drift block retrains on a staged, unpublished version with the same definitions:
``orchestration/core/features/candidate.py`` imports these sources and moves every path of the
form ``<data>/features/current/<table>.parquet`` onto ``<data>/features/versions/<version>/``, in
a scratch Feast registry (the live registry, online store and ``current`` are untouched). Keep
new batch sources under ``PUBLISHED_FEATURES_DIR`` with the table's file name, or that retrain
refuses them (a training set mixing versions would be silently wrong).

In the spark profile (``CAMPAIGN_PROFILE=spark``) the same published files are declared as
``SparkSource``s, the source type Feast's Spark offline store reads (it refuses a ``FileSource``);
``open_feature_store`` switches the offline store to it.

One source is not a batch table: ``customer_sessions_push``, the push source through which
``POST /v1/events`` writes the real-time session features (``customer_sessions_rt``). Its batch
source is a Parquet file under ``<data>/realtime/`` that only declares the schema: the API pushes
to the online store only (``PushMode.ONLINE``) and keeps the events themselves in its own store.
"""

import os
from pathlib import Path

from feast import FileSource, PushSource
from feast.data_format import ParquetFormat

DATA_DIR = Path(
    os.environ.get("CAMPAIGN_DATA_DIR") or Path(__file__).resolve().parents[1] / "data"
).resolve()
PUBLISHED_FEATURES_DIR = DATA_DIR / "features" / "current"
SPARK_PROFILE = os.environ.get("CAMPAIGN_PROFILE", "").strip() == "spark"


def _published(table: str):
    if SPARK_PROFILE:
        return _published_for_spark(table)
    return FileSource(
        name=f"{table}_source",
        path=str(PUBLISHED_FEATURES_DIR / f"{table}.parquet"),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description=f"dbt model {table}, published by the pipeline after its gates passed.",
    )


def _published_for_spark(table: str):
    import warnings

    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "experimental feature in alpha"
        return SparkSource(
            name=f"{table}_source",
            path=str(PUBLISHED_FEATURES_DIR / f"{table}.parquet"),
            file_format="parquet",
            timestamp_field="event_timestamp",
            description=f"dbt model {table}, published by the pipeline after its gates passed.",
        )


customer_rfm_source = _published("feat_customer_rfm")
customer_engagement_source = _published("feat_customer_engagement")
customer_consent_source = _published("feat_customer_consent")
customer_attributes_source = _published("feat_customer_attributes")

customer_sessions_push = PushSource(
    name="customer_sessions_push",
    batch_source=FileSource(
        name="customer_sessions_rt_source",
        path=str(DATA_DIR / "realtime" / "customer_sessions_rt.parquet"),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description="Schema of the real-time session features; rows arrive by push, online only.",
    ),
    description="Real-time session features pushed by POST /v1/events.",
)
