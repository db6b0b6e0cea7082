"""dbt runs in dbt_project/ and reads the data directory from CAMPAIGN_DATA_DIR: the build hands
it the directory the settings resolved, so a relative one means the same place to dbt."""

from __future__ import annotations

from pathlib import Path

from orchestration.defs.warehouse import dbt_environment
from orchestration.settings import DBT_PROJECT_DIR, Settings


def test_a_relative_data_directory_reaches_dbt_as_the_directory_the_user_meant(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAMPAIGN_DATA_DIR", "data/mine")
    monkeypatch.setenv("CAMPAIGN_WORLD_NOW", "2026-03-02T10:00:00+00:00")

    env = dbt_environment(Settings.from_env())

    # the path profiles.yml builds from it, seen from dbt's working directory
    raw = DBT_PROJECT_DIR / env["CAMPAIGN_DATA_DIR"] / "raw"
    assert raw == tmp_path / "data" / "mine" / "raw"
    assert Path(env["CAMPAIGN_DATA_DIR"]).is_absolute()
    assert env["CAMPAIGN_DBT_AS_OF"] == "2026-03-02T10:00:00+00:00"
