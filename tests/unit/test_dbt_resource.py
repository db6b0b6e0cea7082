"""The dbt resource skips dagster-dbt's ``dbt --version`` subprocess and in-process adapter for
the environment's own dbt, and still asks any other dbt for its version."""

from __future__ import annotations

import sys
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import pytest
from dagster_dbt import DbtCliResource
from packaging.version import Version

from orchestration.dbt_project import campaign_dbt_project
from orchestration.resources import CampaignDbtCliResource


def _resource(executable: str) -> CampaignDbtCliResource:
    return CampaignDbtCliResource(project_dir=campaign_dbt_project, dbt_executable=executable)


def test_the_environments_dbt_version_comes_from_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"started a subprocess: {args}")

    monkeypatch.setattr("dagster_dbt.core.resource.check_output", no_subprocess)
    own_dbt = str(Path(sys.executable).parent / "dbt")
    assert _resource(own_dbt)._cli_version == Version(version("dbt-core"))
    assert _resource(own_dbt)._initialize_dbt_core_adapter(["build"]) is None


def test_another_dbt_is_asked_for_its_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked = []

    def fake_check_output(command, *args, **kwargs):
        asked.append(command)
        return b"Core:\n  - installed: 1.9.4\n"

    monkeypatch.setattr("dagster_dbt.core.resource.check_output", fake_check_output)
    other_dbt = tmp_path / "bin" / "dbt"
    other_dbt.parent.mkdir()
    other_dbt.write_text("#!/bin/sh\n")
    other_dbt.chmod(0o755)
    other = str(other_dbt)
    assert _resource(other)._cli_version == Version("1.9.4")
    assert asked == [[other, "--version"]]


def test_dagster_dbt_still_has_what_the_resource_overrides() -> None:
    """A dagster-dbt upgrade that renames these would leave the overrides dead (the costs back,
    silently); this fails instead."""
    assert isinstance(DbtCliResource.__dict__.get("_cli_version"), cached_property)
    assert callable(DbtCliResource.__dict__.get("_initialize_dbt_core_adapter"))
