"""The dbt project as dagster-dbt sees it, and a manifest that is never missing or stale.

dagster-dbt's ``prepare_if_dev()`` only parses under ``dagster dev``; on a fresh clone, in pytest
or in ``dagster asset materialize`` the definitions would fail to load without a manifest. And
re-parsing in every process costs 10-20 s. So: parse only when the manifest is missing or older
than a file of the dbt project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.settings import DBT_PROJECT_DIR

campaign_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

_SOURCE_GLOBS = ("models/**/*", "macros/**/*", "tests/**/*", "seeds/**/*", "snapshots/**/*")
PARTIAL_PARSE = "partial_parse.msgpack"
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
    """Run ``dbt parse`` if the manifest is missing or stale; return its path. The parse uses the
    target and vars the pipeline's build will use (:func:`build_parse_args`), so that build can
    reuse the parse (dbt's partial parsing) instead of parsing the whole project again; if that
    target cannot parse here (e.g. the spark profile without its adapter), the default one does,
    and the build reports the problem where it belongs."""
    if manifest_is_stale(project_dir):
        completed = _parse(project_dir, build_parse_args())
        if completed.returncode != 0:
            completed = _parse(project_dir, [])
        if completed.returncode != 0:
            raise RuntimeError(
                f"`dbt parse` failed in {project_dir} (exit {completed.returncode}); fix the dbt "
                f"project and retry:\n{completed.stdout[-4000:]}\n{completed.stderr[-2000:]}"
            )
    return project_dir / "target" / "manifest.json"


def _parse(project_dir: Path, extra: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            dbt_executable(),
            "parse",
            "--quiet",
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(project_dir),
            *extra,
        ],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=False,
    )


def build_parse_args() -> list[str]:
    """``--target`` and ``--vars`` of the pipeline's ``dbt build`` under the current settings
    (none when the settings do not load: the run reports that error where it belongs)."""
    from orchestration.core.world.attributes import dbt_vars_json
    from orchestration.settings import Settings

    try:
        settings = Settings.from_env()
        return ["--target", settings.dbt_target, "--vars", dbt_vars_json(settings.attributes_file)]
    except Exception:  # noqa: BLE001 - a bad setting or declaration fails the run, not the import
        return []


def keep_partial_parse(invocation_target: Path, project_dir: Path = DBT_PROJECT_DIR) -> None:
    """Make a finished build's parse the one the next build starts from.

    dagster-dbt gives every invocation its own target directory and copies
    ``target/partial_parse.msgpack`` into it, so dbt re-parses only what changed since that file
    was written. This puts the build's own file there (atomically: other processes may be
    reading it); with the same vars, target and profile the next build skips the parse."""
    source = Path(invocation_target) / PARTIAL_PARSE
    if not source.exists():
        return
    target = project_dir / "target"
    target.mkdir(parents=True, exist_ok=True)
    scratch = target / f".{PARTIAL_PARSE}.{os.getpid()}"
    shutil.copyfile(source, scratch)
    os.replace(scratch, target / PARTIAL_PARSE)
