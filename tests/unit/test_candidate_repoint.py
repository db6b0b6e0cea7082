"""The candidate retrain moves every published feature source onto the candidate's version,
whatever the source type of the profile (a FileSource, or a SparkSource in the spark profile),
and refuses a feature view that would still read another version."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestration.core.features.candidate import repoint_file_sources


def _view(source):
    from feast import Entity, FeatureView, Field, ValueType
    from feast.types import Float64

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    return FeatureView(
        name=f"{source.name}_view",
        entities=[customer],
        schema=[Field(name="x", dtype=Float64)],
        source=source,
        ttl=timedelta(days=1),
    )


def _file_source(path):
    from feast import FileSource

    return FileSource(name="rfm_source", path=str(path), timestamp_field="event_timestamp")


def _spark_source(path):
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    return SparkSource(
        name="rfm_source", path=str(path), file_format="parquet", timestamp_field="event_timestamp"
    )


@pytest.mark.parametrize("make_source", [_file_source, _spark_source], ids=["file", "spark"])
def test_published_sources_move_onto_the_candidate(tmp_path, make_source):
    published, version = tmp_path / "current", tmp_path / "versions" / "v2"
    version.mkdir(parents=True)
    (version / "feat_customer_rfm.parquet").write_bytes(b"")
    source = make_source(published / "feat_customer_rfm.parquet")
    moved = repoint_file_sources([source, _view(source)], published, version)
    assert moved == {"rfm_source": str(version / "feat_customer_rfm.parquet")}
    assert source.path == str(version / "feat_customer_rfm.parquet")


@pytest.mark.parametrize("make_source", [_file_source, _spark_source], ids=["file", "spark"])
def test_a_view_reading_another_version_is_refused(tmp_path, make_source):
    published, version = tmp_path / "current", tmp_path / "versions" / "v2"
    version.mkdir(parents=True)
    source = make_source(tmp_path / "elsewhere" / "feat_customer_rfm.parquet")
    with pytest.raises(ValueError, match="not reading version v2"):
        repoint_file_sources([source, _view(source)], published, version)
