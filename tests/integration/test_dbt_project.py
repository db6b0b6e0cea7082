"""The dbt project parses, documents itself and stays SQL lint-clean.

Every command runs from dbt_project/ with its documented profile (profiles.yml in that directory)
and writes its target/ and logs/ under tmp, so a test never touches the project's own manifest
that Dagster loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.settings import DBT_PROJECT_DIR

BIN = Path(sys.executable).parent
MARTS = sorted(p.stem for p in (DBT_PROJECT_DIR / "models" / "marts").glob("*.sql"))


def _env(data_dir: Path, target: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CAMPAIGN_DATA_DIR": str(data_dir),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target.parent / "logs"),
    }


def _run(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        args,
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, f"{' '.join(args)}:\n{completed.stdout}\n{completed.stderr}"
    return completed


def test_dbt_parse_succeeds(tmp_path):
    _run([str(BIN / "dbt"), "parse"], _env(tmp_path / "data", tmp_path / "target"))
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert set(MARTS) <= models


def test_every_model_and_every_mart_column_is_described(tmp_path):
    _run([str(BIN / "dbt"), "parse"], _env(tmp_path / "data", tmp_path / "target"))
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert [m["name"] for m in models if not m["description"].strip()] == []
    for mart in (m for m in models if m["name"] in MARTS):
        assert mart["columns"], f"{mart['name']} documents no column"
        undescribed = [c for c, v in mart["columns"].items() if not v["description"].strip()]
        assert undescribed == [], f"{mart['name']}: columns without a description"


def test_a_build_on_a_new_clock_reuses_the_previous_parse(tmp_path, monkeypatch):
    """The pipeline's build passes its clock through CAMPAIGN_DBT_AS_OF and the same vars as the
    parse before it (``build_parse_args``), and keeps its parse for the next build
    (``keep_partial_parse``): so a build on a new clock skips parsing (a var that changed every
    run re-parsed all 181 files every build) and still builds as of that clock."""
    from orchestration.dbt_project import build_parse_args, keep_partial_parse

    monkeypatch.setenv("CAMPAIGN_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "warehouse").mkdir(parents=True)
    first, second = tmp_path / "first", tmp_path / "second"
    _run([str(BIN / "dbt"), "parse", *build_parse_args()], _env(tmp_path / "data", first))
    keep_partial_parse(first, project_dir=tmp_path)  # what a finished build does
    second.mkdir()  # and what dagster-dbt does for the next invocation
    (second / "partial_parse.msgpack").write_bytes(
        (tmp_path / "target" / "partial_parse.msgpack").read_bytes()
    )
    env = {**_env(tmp_path / "data", second), "CAMPAIGN_DBT_AS_OF": "2024-06-01T00:00:00+00:00"}
    model = "int_feature_snapshot_times_unioned"
    _run([str(BIN / "dbt"), "compile", "--select", model, *build_parse_args()], env)
    log = (tmp_path / "logs" / "dbt.log").read_text()
    assert "Partial parsing enabled, no changes found, skipping parsing" in log
    compiled = next((second / "compiled").rglob(f"{model}.sql")).read_text()
    assert "cast('2024-06-01T00:00:00+00:00' as timestamptz)" in compiled


def test_keeping_a_parse_is_a_no_op_without_one(tmp_path):
    from orchestration.dbt_project import keep_partial_parse

    keep_partial_parse(tmp_path / "no_build", project_dir=tmp_path)
    assert not (tmp_path / "target").exists()


@pytest.mark.e2e
def test_dbt_docs_generate_writes_a_catalog_of_the_marts(tmp_path):
    """On a tiny generated world: dbt build, then docs generate lists every mart with every
    column the YAML documents (and no undocumented one)."""
    data_dir, target = tmp_path / "data", tmp_path / "target"
    env = _env(data_dir, target)
    _run([str(BIN / "campaign"), "generate", "--customers", "3000"], env)
    _run([str(BIN / "dbt"), "build"], env)
    docs = _run([str(BIN / "dbt"), "docs", "generate"], env)
    assert "Catalog written to" in docs.stdout
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    for mart in MARTS:
        node = f"model.campaign_warehouse.{mart}"
        assert node in catalog["nodes"], f"{mart} missing from the catalog"
        built = {c.lower() for c in catalog["nodes"][node]["columns"]}
        documented = {c.lower() for c in manifest["nodes"][node]["columns"]}
        assert built == documented, f"{mart}: built vs documented columns differ"


def test_sqlfluff_lint_of_the_models_reports_zero_violations(tmp_path):
    """CI keeps the SQL lint-clean (`make lint` runs the same command)."""
    completed = subprocess.run(
        [str(BIN / "sqlfluff"), "lint", "models", "--format", "json", "--nofail"],
        cwd=DBT_PROJECT_DIR,
        env=_env(tmp_path / "data", tmp_path / "target"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert {f["filepath"] for f in report} >= {f"models/marts/{m}.sql" for m in MARTS}
    violations = [
        f"{f['filepath']}:{v['start_line_no']} {v['code']} {v['description']}"
        for f in report
        for v in f["violations"]
    ]
    assert violations == [], "\n".join(violations)
