"""One pipeline world shared by the end-to-end tests (built once per session: ~90 s)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance

from orchestration.settings import Settings
from tests.conftest import local_instance, point_at
from tests.e2e.example_rct import run_example

CUSTOMERS = 20_000
SEED = 7
# The e2e world runs on a world clock 16 days in the past (10:00 UTC), so a later test can move
# it 15 days on and see the outcomes of the first run's sends land.
WORLD_START = (datetime.now(UTC) - timedelta(days=16)).replace(
    hour=10, minute=0, second=0, microsecond=0
)


def run_pipeline(instance: DagsterInstance, **world):
    from orchestration.definitions import defs

    job = defs.resolve_job_def("campaign_pipeline")
    return job.execute_in_process(
        instance=instance,
        run_config={
            "ops": {"raw_data": {"config": {"customers": CUSTOMERS, "seed": SEED, **world}}}
        },
        raise_on_error=False,
    )


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """A good run on a fresh 20k-customer world. Read-only tests (notebooks) run first; the
    scenario tests in test_pipeline.py then run in file order on the same state."""
    data_dir = tmp_path_factory.mktemp("pipeline") / "data"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setenv("CAMPAIGN_WORLD_NOW", WORLD_START.isoformat())
        home = data_dir.parent / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        instance = local_instance(home)
        first = run_pipeline(instance)
        yield {"instance": instance, "settings": Settings.from_env(), "first": first, "mp": mp}


@pytest.fixture(scope="session")
def example_run(tmp_path_factory):
    """The bring-your-own-data example (three arms, declared attributes) run once per session;
    its settings apply only during the run (``example_run["env"]`` has them)."""
    return run_example(tmp_path_factory.mktemp("own_data"))
