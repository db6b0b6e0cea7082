"""Write-audit-publish: a staged version is invisible until published; publish is atomic."""

import pandas as pd
import pytest

from orchestration.core.features.publishing import (
    FEATURE_TABLES,
    current_feature_version,
    publish_feature_version,
    stage_feature_version,
)
from orchestration.core.world.warehouse import ParquetExports


def _export(exports, value):
    exports.mkdir(parents=True, exist_ok=True)
    for table in FEATURE_TABLES:
        pd.DataFrame({"customer_id": [1], "value": [value]}).to_parquet(
            exports / f"{table}.parquet"
        )


def test_staged_version_is_not_visible_until_published(tmp_path):
    exports, features = tmp_path / "exports", tmp_path / "features"
    _export(exports, 1)
    first = stage_feature_version(ParquetExports(exports), features)
    assert current_feature_version(features) is None
    publish_feature_version(features, first.version)
    assert current_feature_version(features).version == first.version

    _export(exports, 2)
    second = stage_feature_version(ParquetExports(exports), features)
    # audit failed: nothing published, readers still see the first version
    current = current_feature_version(features)
    assert current.version == first.version
    assert pd.read_parquet(current.table(FEATURE_TABLES[0]))["value"].tolist() == [1]
    assert second.version != first.version


def test_identical_content_has_the_same_digest(tmp_path):
    exports, features = tmp_path / "exports", tmp_path / "features"
    _export(exports, 1)
    a = stage_feature_version(ParquetExports(exports), features)
    b = stage_feature_version(ParquetExports(exports), features)
    assert a.version.split("-")[-1] == b.version.split("-")[-1]


def test_missing_export_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="dbt build"):
        stage_feature_version(ParquetExports(tmp_path / "nothing"), tmp_path / "features")


def test_old_versions_are_pruned_but_current_is_kept(tmp_path):
    exports, features = tmp_path / "exports", tmp_path / "features"
    versions = []
    for i in range(9):
        _export(exports, i)
        versions.append(stage_feature_version(ParquetExports(exports), features))
    publish_feature_version(features, versions[0].version)
    kept = {p.name for p in (features / "versions").iterdir()}
    assert versions[0].version in kept
    assert len(kept) <= 6
