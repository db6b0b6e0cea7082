"""Write-audit-publish for the feature tables Feast reads.

dbt builds the feature tables in the warehouse (Parquet exports on DuckDB, tables on Postgres:
``orchestration.core.world.warehouse``). A run copies them into a new immutable version directory
of Parquet files (write), the gates audit that version, and only then ``current`` is switched to
it with an atomic symlink swap (publish). A failed gate leaves ``current`` (and therefore Feast and
the online store) at the last good version.

    features/
      versions/<version>/feat_*.parquet
      current -> versions/<version>

A version staged by a run whose gates failed stays under ``versions/`` unpublished: the newest of
them is the *candidate* (:func:`candidate_feature_version`), which the drift-recovery job
retrains on and publishes only when its own gates pass.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestration.core.world.warehouse import Warehouse

FEATURE_TABLES: tuple[str, ...] = (
    "feat_customer_rfm",
    "feat_customer_engagement",
    "feat_customer_consent",
    "feat_customer_attributes",
)
VERSIONS_KEPT = 5


@dataclass(frozen=True)
class FeatureVersion:
    version: str
    path: Path

    def table(self, name: str) -> Path:
        return self.path / f"{name}.parquet"


DIGEST_CHARS = 12


def _digest(files: list[Path]) -> str:
    sha = hashlib.sha256()
    for file in files:
        sha.update(file.name.encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()


def _missing_tables(warehouse: Warehouse, tables: tuple[str, ...]) -> list[str]:
    return [warehouse.describe(t) for t in tables if not warehouse.has_table(t)]


def stage_feature_version(
    warehouse: Warehouse, features_dir: Path, tables: tuple[str, ...] = FEATURE_TABLES
) -> FeatureVersion:
    """Copy the warehouse's feature tables into a new version directory (not yet published).

    The version id is the UTC time plus a digest of the content, so identical content is
    recognisable across runs and versions sort by time.
    """
    missing = _missing_tables(warehouse, tables)
    if missing:
        raise FileNotFoundError(
            f"feature tables not built by dbt: {missing}; run `dbt build` for the feat_ models"
        )
    features_dir = Path(features_dir)
    (features_dir / "versions").mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=features_dir / "versions"))
    files = []
    for table in tables:
        files.append(staging / f"{table}.parquet")
        warehouse.export_parquet(table, files[-1])
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{_digest(files)[:DIGEST_CHARS]}"
    target = features_dir / "versions" / version
    os.replace(staging, target)
    return FeatureVersion(version=version, path=target)


def publish_feature_version(features_dir: Path, version: str) -> FeatureVersion:
    """Point ``current`` at ``version`` atomically and prune old unpublished versions."""
    features_dir = Path(features_dir)
    target = features_dir / "versions" / version
    if not target.is_dir():
        raise FileNotFoundError(f"feature version {version} does not exist under {target.parent}")
    link = features_dir / "current"
    tmp_link = features_dir / f".current-{version}.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(Path("versions") / version, target_is_directory=True)
    os.replace(tmp_link, link)
    _prune(features_dir, keep={version})
    return FeatureVersion(version=version, path=target)


def current_feature_version(features_dir: Path) -> FeatureVersion | None:
    link = Path(features_dir) / "current"
    if not link.is_symlink():
        return None
    target = link.resolve()
    return FeatureVersion(version=target.name, path=target) if target.is_dir() else None


def staged_feature_versions(features_dir: Path) -> list[FeatureVersion]:
    """Every version directory under ``versions/``, oldest first (ids sort by staging time)."""
    root = Path(features_dir) / "versions"
    if not root.is_dir():
        return []
    return [
        FeatureVersion(version=p.name, path=p)
        for p in sorted(root.iterdir(), key=lambda p: p.name)
        if p.is_dir() and not p.name.startswith(".")
    ]


def candidate_feature_version(
    features_dir: Path, version: str | None = None
) -> FeatureVersion | None:
    """The candidate: the newest staged version newer than the published one (``current``).

    That is the version a run wrote and its gates refused (a drift block), or one staged since.
    ``version`` names one explicitly; it must exist and not be the published one. None when
    nothing was staged after the published version.
    """
    published = current_feature_version(features_dir)
    staged = staged_feature_versions(features_dir)
    if version is not None:
        chosen = [v for v in staged if v.version == version]
        if not chosen:
            raise FileNotFoundError(f"feature version {version} is not staged under {features_dir}")
        if published is not None and chosen[0].version == published.version:
            raise ValueError(f"feature version {version} already is the published one")
        return chosen[0]
    newer = [v for v in staged if published is None or v.version > published.version]
    return newer[-1] if newer else None


def content_digest(version: str) -> str:
    """The content part of a version id (``<UTC time>-<digest>``)."""
    return version.rsplit("-", 1)[-1]


def exports_digest(warehouse: Warehouse, tables: tuple[str, ...] = FEATURE_TABLES) -> str | None:
    """The content digest a version staged now from the warehouse would carry (None when a
    table is missing): equal to a version's :func:`content_digest` when the warehouse still
    holds what that version was copied from."""
    if _missing_tables(warehouse, tables):
        return None
    with tempfile.TemporaryDirectory(prefix="feature-digest-") as scratch:
        files = [Path(scratch) / f"{t}.parquet" for t in tables]
        for table, file in zip(tables, files, strict=True):
            warehouse.export_parquet(table, file)
        return _digest(files)[:DIGEST_CHARS]


def _prune(features_dir: Path, keep: set[str]) -> None:
    versions = sorted((features_dir / "versions").iterdir(), key=lambda p: p.name)
    old = [p for p in versions if p.is_dir() and p.name not in keep][:-VERSIONS_KEPT]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
