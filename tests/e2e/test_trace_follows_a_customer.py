"""One customer, followed by trace id from the raw data to the request the provider received.

A small world (3,000 customers) runs the pipeline with e-mail routed to the stub HTTP provider on
127.0.0.1. The run's trace id (its run id) must be on the customer's decision row and ledger row,
in the traceparent of the provider request that carried the message, and the trace exported at
the end of the run must hold a span for every stage from raw_data to campaign_sends.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from orchestration.settings import Settings
from tests.conftest import local_instance, point_at
from tests.gateway.stub_provider import StubProvider

pytestmark = pytest.mark.e2e

CUSTOMERS = 3_000
SEED = 5
WORLD_NOW = (datetime.now(UTC) - timedelta(days=1)).replace(
    hour=10, minute=0, second=0, microsecond=0
)

GATEWAY = """
providers:
  esp:
    type: http
    url: {url}
    token_env: STUB_PROVIDER_TOKEN
    batch_size: 200
    rate_per_second: 100000
channels:
  email: {{provider: esp}}
  sms: {{provider: esp}}
  push: {{provider: esp}}
"""


@pytest.fixture(scope="module")
def traced_run(tmp_path_factory):
    from orchestration.definitions import defs
    from orchestration.defs.run_history import record_run_health

    root = tmp_path_factory.mktemp("trace_follow")
    stub = StubProvider(token="trace-token")
    stub.start()
    config = root / "gateway.yaml"
    config.write_text(GATEWAY.format(url=stub.url))
    try:
        with pytest.MonkeyPatch.context() as mp:
            point_at(mp, root / "data")
            mp.setenv("CAMPAIGN_WORLD_NOW", WORLD_NOW.isoformat())
            mp.setenv("CAMPAIGN_MIN_CHAMPION_QINI", "-1")  # 3,000 customers: about the trace
            mp.setenv("CAMPAIGN_GATEWAY_CONFIG", str(config))
            mp.setenv("STUB_PROVIDER_TOKEN", "trace-token")
            (root / "dagster_home").mkdir()
            instance = local_instance(root / "dagster_home")
            result = defs.resolve_job_def("campaign_pipeline").execute_in_process(
                instance=instance,
                run_config={
                    "ops": {"raw_data": {"config": {"customers": CUSTOMERS, "seed": SEED}}}
                },
                raise_on_error=False,
            )
            settings = Settings.from_env()
            assert result.success
            record_run_health(instance, result.run_id, settings)  # what `campaign run` does
            yield {"run_id": result.run_id, "settings": settings, "stub": stub}
    finally:
        stub.stop()


def test_one_customer_from_raw_data_to_the_providers_request(traced_run):
    from orchestration.core.delivery.ledger import idempotency_key
    from orchestration.core.observability.tracing import (
        parse_traceparent,
        read_trace,
        trace_id_for_run,
    )

    s: Settings = traced_run["settings"]
    trace_id = trace_id_for_run(traced_run["run_id"])
    with sqlite3.connect(s.gateway_dir / "ledger.db") as con:
        ledger = pd.read_sql_query("select * from deliveries where status = 'delivered'", con)
    assert len(ledger) > 0
    sent = ledger.iloc[0]
    customer = int(sent["customer_id"])

    raw = pd.read_parquet(s.raw_dir / "customers.parquet", columns=["customer_id"])
    assert customer in set(raw["customer_id"])  # the customer exists in the raw data

    decisions = pd.concat(pd.read_parquet(p) for p in s.decisions_dir.glob("**/*.parquet"))
    row = decisions[(decisions["customer_id"] == customer) & (decisions["decision"] == "send")]
    assert set(row["trace_id"]) == {trace_id}
    assert sent["trace_id"] == trace_id

    key = idempotency_key(sent["campaign"], customer, sent["channel"], sent["send_date"])
    assert parse_traceparent(traced_run["stub"].message_traceparents[key])[0] == trace_id
    assert trace_id in {parse_traceparent(h)[0] for h in traced_run["stub"].traceparents}

    spans = {span["name"]: span for span in read_trace(s.traces_file, trace_id)}
    assert "run campaign_pipeline" in spans
    for stage in ("raw_data", "customer_scores", "campaign_release", "campaign_sends"):
        assert stage in spans, sorted(spans)
        assert spans[stage]["parent_id"] == spans["run campaign_pipeline"]["context"]["span_id"]
    counted = {
        n: s["attributes"]["stage.rows"]
        for n, s in spans.items()
        if "stage.rows" in s["attributes"]
    }
    assert counted and all(rows > 0 for rows in counted.values()), counted
