"""The production profile end to end on real servers: Postgres (Dagster, MLflow, warehouse) and
Redis (Feast online store), started on free 127.0.0.1 ports by ``scripts/services.sh``.

One small world, three runs: a good run whose state must land in the servers (run history in
Postgres, the model version and its champion alias in MLflow's Postgres store, the marts in the
Postgres warehouse, online features in Redis, sends in the ledger); then both servers are
restarted and nothing may be lost; then the two drills (stale raw data, a policy violation)
must give zero sends on that footing too. About 3 minutes on 2 cores (179 s measured, 597 s on a
crowded machine): marked ``production``, run by ``make test-production``, which ``.ci/run`` runs
after the suite.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from orchestration.settings import Settings
from tests.conftest import point_at
from tests.production.servers import production_servers

pytestmark = [pytest.mark.production, pytest.mark.e2e]

CUSTOMERS = 4_000
SEED = 7
WORLD_START = (datetime.now(UTC) - timedelta(days=1)).replace(
    hour=10, minute=0, second=0, microsecond=0
)


def _run(instance, **world):
    from orchestration.definitions import defs

    job = defs.resolve_job_def("campaign_pipeline")
    return job.execute_in_process(
        instance=instance,
        run_config={
            "ops": {"raw_data": {"config": {"customers": CUSTOMERS, "seed": SEED, **world}}}
        },
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    from orchestration.instance import dagster_instance

    with production_servers() as servers, pytest.MonkeyPatch.context() as mp:
        data_dir = tmp_path_factory.mktemp("production") / "data"
        point_at(mp, data_dir)
        mp.delenv("MLFLOW_TRACKING_URI")  # the profile's default: MLflow's Postgres database
        mp.setenv("CAMPAIGN_PROFILE", "production")
        mp.setenv("CAMPAIGN_POSTGRES_URL", servers.postgres_url)
        mp.setenv("CAMPAIGN_REDIS_URL", servers.redis_url)
        mp.setenv("CAMPAIGN_WORLD_NOW", WORLD_START.isoformat())
        # a 4k world's holdout is too small to show the ranking beats random; this test is
        # about where the state lives, the model gate has its own tests
        mp.setenv("CAMPAIGN_MIN_CHAMPION_QINI", "-1")
        settings = Settings.from_env()
        instance = dagster_instance(settings, data_dir.parent / "dagster_home")
        first = _run(instance)
        yield {
            "servers": servers,
            "settings": settings,
            "instance": instance,
            "first": first,
            "mp": mp,
        }
        instance.dispose()


def _pg(settings: Settings, database: str, sql: str, *params):
    import psycopg2

    with psycopg2.connect(settings.postgres_database(database)) as con, con.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    con.close()
    return rows


def _ledger_rows(settings: Settings) -> int:
    with sqlite3.connect(settings.gateway_dir / "ledger.db") as con:
        return con.execute("select count(*) from deliveries").fetchone()[0]


def _outbox_messages(settings: Settings) -> int:
    path = settings.gateway_dir / "outbox.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as con:
        return con.execute("select count(*) from messages").fetchone()[0]


def _state(production) -> dict[str, object]:
    """What the good run left in the servers and the ledger."""
    import redis

    s, run_id = production["settings"], production["first"].run_id
    online = redis.Redis.from_url(s.redis_url)
    try:
        online_keys = online.dbsize()
    finally:
        online.close()
    return {
        "run_rows": _pg(s, "dagster", "select status from runs where run_id = %s", run_id),
        "run_events": _pg(
            s, "dagster", "select count(*) from event_logs where run_id = %s", run_id
        )[0][0],
        "model_versions": _pg(
            s,
            "mlflow",
            "select version from model_versions where name = %s order by version",
            s.model_name,
        ),
        "champion": _pg(
            s,
            "mlflow",
            "select version from registered_model_aliases where name = %s and alias = 'champion'",
            s.model_name,
        ),
        "customers_in_warehouse": _pg(
            s, "warehouse", "select count(*) from analytics.dim_customers"
        )[0][0],
        "feature_rows_in_warehouse": _pg(
            s, "warehouse", "select count(*) from analytics.feat_customer_rfm"
        )[0][0],
        "online_keys": online_keys,
        "ledger_rows": _ledger_rows(s),
        "outbox_messages": _outbox_messages(s),
    }


def test_good_run_keeps_its_state_in_postgres_and_redis(production):
    from orchestration.core.features.feast_store import online_features

    first = production["first"]
    assert first.success
    state = _state(production)
    production["state"] = state
    assert state["run_rows"] == [("SUCCESS",)]
    assert state["run_events"] > 100
    assert state["model_versions"] == [("1",)] or state["model_versions"] == [(1,)]
    assert [str(v) for (v,) in state["champion"]] == ["1"]
    assert state["customers_in_warehouse"] == CUSTOMERS
    assert state["feature_rows_in_warehouse"] > CUSTOMERS
    # the contact details never enter the warehouse
    assert _pg(
        production["settings"],
        "warehouse",
        "select count(*) from information_schema.tables where table_name = 'contact_points'",
    ) == [(0,)]
    assert state["online_keys"] >= CUSTOMERS * 0.9  # one hash per customer entity
    online = online_features(production["settings"], [1, 2, 3])
    assert online.drop(columns=["customer_id"]).notna().any(axis=1).all()
    assert state["ledger_rows"] > 0
    assert state["outbox_messages"] > 0


def test_restarting_postgres_and_redis_loses_nothing(production):
    before = production.get("state") or _state(production)
    production["servers"].restart()
    assert _state(production) == before


def test_stale_raw_data_sends_nothing_in_production(production):
    s = production["settings"]
    before = (_ledger_rows(s), _outbox_messages(s))
    result = _run(production["instance"], as_of=(s.now() - timedelta(days=10)).isoformat())
    assert not result.success
    checks = {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }
    assert not checks["raw/orders:fresh_within_window"].passed
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"dim_customers", "campaign_release", "campaign_sends"}.isdisjoint(materialized)
    assert (_ledger_rows(s), _outbox_messages(s)) == before
    # the failed run's history is in Postgres next to the good one's
    assert _pg(s, "dagster", "select status from runs where run_id = %s", result.run_id) == [
        ("FAILURE",)
    ]


def test_policy_violation_sends_nothing_in_production(production):
    """An opted-out customer forced into the audience: the compliance gate stops the release."""
    import numpy as np

    import orchestration.core.decisioning.decide as decisioning
    from orchestration.core.decisioning.engine import DECISIONS, REASONS

    s = production["settings"]
    original = decisioning.evaluate

    def buggy_evaluate(inputs, campaigns, policy, sent_today=None):
        result = original(inputs, campaigns, policy, sent_today)
        for decisions in result.campaigns:
            channel = decisions.campaign.channel
            opted_out = ~inputs.candidates[f"is_{channel}_opted_in"].to_numpy(dtype=bool)
            victim = int(np.flatnonzero(opted_out)[0])
            decisions.decision[victim] = DECISIONS.index("send")
            decisions.reason[victim] = REASONS.index("selected_top_uplift")
        return result

    before = (_ledger_rows(s), _outbox_messages(s))
    production["mp"].setattr(decisioning, "evaluate", buggy_evaluate)
    try:
        result = _run(production["instance"])
    finally:
        production["mp"].setattr(decisioning, "evaluate", original)
    assert not result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["audience_compliant"].passed
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"campaign_release", "campaign_sends"}.isdisjoint(materialized)
    assert (_ledger_rows(s), _outbox_messages(s)) == before
