"""The worked example of docs/bring-your-own-data.md run once for the tests that read it.

The example RCT (examples/rct/rct.csv: 3,600 customers, arms control / offer / reminder, four
attributes: make_example_csv.py) is mapped by
examples/rct/map_rct.py into raw Parquet files; one customer's plan is then upgraded the day
after the campaign (a hand-made attribute row that must not reach the training row). The whole
pipeline runs on ``CAMPAIGN_DATASET=files`` with the example's attribute declaration and its
campaign (examples/rct/campaigns: the two treatment arms as variants).

The settings apply only while the run runs: :func:`run_example` hands back the environment so a
test (the notebook on the example's model) can point at the same data directory again.
Definitions are built from the campaigns directory when they are imported, so they are rebuilt
for the example's directory and rebuilt again afterwards.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from orchestration.settings import PROJECT_DIR, Settings
from tests.conftest import local_instance, point_at

EXAMPLE = PROJECT_DIR / "examples" / "rct"
UPGRADED = 2  # a basic-plan customer of the example (row 2 of rct.csv), upgraded after the send
ENV_KEYS = (
    "CAMPAIGN_DATA_DIR",
    "MLFLOW_TRACKING_URI",
    "CAMPAIGN_DATASET",
    "CAMPAIGN_ATTRIBUTES_FILE",
    "CAMPAIGN_CAMPAIGNS_DIR",
    "CAMPAIGN_WORLD_NOW",
)


def reload_definitions():
    import orchestration.definitions as definitions
    import orchestration.defs.campaigns as campaign_defs

    importlib.reload(campaign_defs)
    return importlib.reload(definitions).defs


def _map_rct():
    spec = importlib.util.spec_from_file_location("map_rct", EXAMPLE / "map_rct.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["map_rct"] = module
    spec.loader.exec_module(module)
    return module


def _upgrade_after_the_send(raw_dir: Path, customer_id: int) -> pd.Timestamp:
    """Add a 'premium' row for ``customer_id`` valid from the day after the campaign."""
    path = raw_dir / "customer_attributes.parquet"
    attributes = pd.read_parquet(path)
    exposed_at = pd.read_parquet(raw_dir / "campaign_exposures.parquet")["exposed_at"].max()
    row = attributes[attributes["customer_id"] == customer_id].copy()
    assert (row["plan"] == "basic").all()
    row["plan"], row["valid_from"] = "premium", exposed_at + pd.Timedelta(days=1)
    pd.concat([attributes, row]).sort_values(["customer_id", "valid_from"]).to_parquet(
        path, index=False
    )
    return exposed_at


def run_example(root: Path) -> dict:
    """Map the example under ``root``, run the pipeline on it; the result, the settings, the
    environment it ran with and the exposure time."""
    data_dir = root / "data"
    map_rct = _map_rct()
    tables, clock = map_rct.map_rct(pd.read_csv(EXAMPLE / "rct.csv"))
    map_rct.write_raw(tables, data_dir / "raw")
    exposed_at = _upgrade_after_the_send(data_dir / "raw", UPGRADED)
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setenv("CAMPAIGN_DATASET", "files")
        mp.setenv("CAMPAIGN_ATTRIBUTES_FILE", str(EXAMPLE / "attributes.yaml"))
        mp.setenv("CAMPAIGN_CAMPAIGNS_DIR", str(EXAMPLE / "campaigns"))
        mp.setenv("CAMPAIGN_WORLD_NOW", clock.isoformat())
        mp.delenv("CAMPAIGN_TARGET", raising=False)
        home = root / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        instance = local_instance(home)
        try:
            result = (
                reload_definitions()
                .resolve_job_def("campaign_pipeline")
                .execute_in_process(instance=instance, raise_on_error=False)
            )
        finally:
            env = {key: os.environ[key] for key in ENV_KEYS}
            settings = Settings.from_env()
    reload_definitions()  # back to the default campaigns for whatever runs next
    return {"settings": settings, "result": result, "exposed_at": exposed_at, "env": env}
