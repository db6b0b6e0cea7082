"""The dbt project as assets: staging, intermediate and marts; dbt tests become asset checks.

``dbt build`` (not ``run``) so each model's tests run right after it and report as checks; the
``severity: error`` tests are blocking, so a failing test stops everything downstream.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration.core.world.attributes import dbt_vars_json
from orchestration.dbt_project import campaign_dbt_project, ensure_manifest, keep_partial_parse
from orchestration.resources import CampaignSettings
from orchestration.settings import Settings


class CampaignDbtTranslator(DagsterDbtTranslator):
    """Feature tables go to the ``features`` group, everything else to ``warehouse``;
    sources map onto the raw data assets (``raw/<table>``)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(["raw", dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["name"].startswith("feat_"):
            return "features"
        return "warehouse"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:analytics-engineering"]


translator = CampaignDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=ensure_manifest(),
    project=campaign_dbt_project,
    dagster_dbt_translator=translator,
    pool="warehouse",
)
def warehouse_models(
    context: AssetExecutionContext, dbt: DbtCliResource, settings: CampaignSettings
):
    """Build and test the dbt models (one writer of the DuckDB file at a time: pool 'warehouse'),
    as of the pipeline's clock (real time, or the world clock of a simulation), on the profile's
    dbt target. The Postgres target reads its sources from tables, so the raw files are loaded
    into them first; dbt-duckdb reads the files in place, and the Spark target registers them as
    tables over the files itself (an on-run-start hook)."""
    from orchestration.core.world.attributes import load_attributes

    s = settings.get()
    if s.is_production:
        from orchestration.core.world.warehouse_load import load_raw_tables

        loaded = load_raw_tables(
            s.raw_dir, s.postgres_database("warehouse"), load_attributes(s.attributes_file)
        )
        context.log.info(
            "raw tables loaded into the Postgres warehouse: "
            + ", ".join(f"{t.name} {t.rows}" for t in loaded)
        )
    if s.is_spark:  # dbt-spark's metastore, warehouse and scratch live here (profiles.yml)
        (s.spark_dir / "tmp").mkdir(parents=True, exist_ok=True)
    args = ["build", "--target", s.dbt_target, "--threads", str(s.warehouse_threads)]
    # the declared customer attributes (config/attributes.yaml) shape the attribute models; the
    # clock goes through the environment (see macros/decision_time.sql: a var that changes every
    # run would re-parse the whole project every build)
    with _environment(**dbt_environment(s)):
        invocation = dbt.cli([*args, "--vars", dbt_vars_json(s.attributes_file)], context=context)
    yield from invocation.stream()
    keep_partial_parse(invocation.target_path)


def dbt_environment(s: Settings) -> dict[str, str]:
    """What the build's dbt process reads from the environment besides the profile's defaults:
    the clock, and the data directory as the settings resolved it (profiles.yml takes
    CAMPAIGN_DATA_DIR as written and dbt runs in dbt_project/, so a relative one, e.g.
    ``CAMPAIGN_DATA_DIR=data/mine``, named another directory there and dbt found no raw files)."""
    return {"CAMPAIGN_DBT_AS_OF": s.now().isoformat(), "CAMPAIGN_DATA_DIR": str(s.data_dir)}


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``values`` in os.environ while the block runs (dagster-dbt starts dbt with a copy of it)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
