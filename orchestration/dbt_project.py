"""The dbt project as dagster-dbt sees it, and a manifest that is never missing or stale.

dagster-dbt's ``prepare_if_dev()`` only parses under ``dagster dev``; on a fresh clone, in pytest
or in ``dagster asset materialize`` the definitions would fail to load without a manifest. And
re-parsing in every process costs 10-20 s. So: parse only when the manifest is missing or older
than a file of the dbt project.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.settings import DBT_PROJECT_DIR

campaign_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

_SOURCE_GLOBS = ("models/**/*", "macros/**/*", "tests/**/*", "seeds/**/*", "snapshots/**/*")
_SOURCE_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")


def dbt_executable() -> str:
    """The environment's own dbt (dbt Fusion's ``dbtf`` on PATH cannot run duckdb)."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def manifest_is_stale(project_dir: Path = DBT_PROJECT_DIR) -> bool:
    manifest = project_dir / "target" / "manifest.json"
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    files = [project_dir / f for f in _SOURCE_FILES if (project_dir / f).exists()]
    for pattern in _SOURCE_GLOBS:
        files.extend(p for p in project_dir.glob(pattern) if p.is_file())
    return any(f.stat().st_mtime > built for f in files)


def ensure_manifest(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """Run ``dbt parse`` if the manifest is missing or stale; return its path."""
    if manifest_is_stale(project_dir):
        completed = subprocess.run(
            [
                dbt_executable(),
                "parse",
                "--quiet",
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(project_dir),
            ],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"`dbt parse` failed in {project_dir} (exit {completed.returncode}); fix the dbt "
                f"project and retry:\n{completed.stdout[-4000:]}\n{completed.stderr[-2000:]}"
            )
    return project_dir / "target" / "manifest.json"
