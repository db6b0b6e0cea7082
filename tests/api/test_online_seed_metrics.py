"""The decision API's seed metrics (online latency, inference success rate, online feature
availability), computed from its decisions store, against numbers worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orchestration.core.decisioning.realtime import ApiDecisionStore
from orchestration.core.decisioning.realtime.decision_store import STORE_COLUMNS
from orchestration.core.decisioning.realtime.online_metrics import online_seed_metrics
from orchestration.run_summary import RunSummary, seed_metrics

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WINDOW_HOURS = 48.0  # the freshness window


def _row(request_id, reason, score, feature_age_hours, latency_ms, hours_ago=1.0) -> dict:
    decided = NOW - timedelta(hours=hours_ago)
    stamp = None if feature_age_hours is None else decided - timedelta(hours=feature_age_hours)
    answer = {"request_id": request_id, "latency_ms": {"features": 0.5, "total": latency_ms}}
    row = dict.fromkeys(STORE_COLUMNS)
    row.update(
        request_id=request_id,
        request_digest=request_id,
        run_id="api",
        campaign="offer",
        customer_id=1,
        decision="send" if reason == "send" else "no_send",
        reason=reason,
        predicted_uplift=score,
        feature_timestamp=None if stamp is None else stamp.isoformat(),
        decided_at=decided.isoformat(),
        decided_on=decided.date().isoformat(),
        dry_run=0,
        decided_via="api",
        answer=json.dumps(answer),
    )
    return row


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "decisions.db"
    store = ApiDecisionStore(path)
    store.put_many(
        [
            _row("r1", "send", 0.10, 2.0, 4.0),  # scored, fresh features
            _row("r2", "no_consent_on_channel", 0.05, 3.0, 6.0),  # scored, fresh
            _row("r3", "unavailable", None, None, 10.0),  # needed a score, failed
            _row("r4", "stale_features", None, 60.0, 2.0),  # features read, too old
            _row("r5", "unknown_customer", None, None, 1.0),  # no features to read
            _row("r6", "not_released", None, 1.0, 8.0),  # fresh features, no score needed
            _row("r7", "send", 0.2, 1.0, 100.0, hours_ago=30.0),  # before the window
        ]
    )
    store.close()
    return path


def test_online_metrics_over_the_last_day(store_path):
    metrics = online_seed_metrics(store_path, NOW, freshness_hours=WINDOW_HOURS)
    assert metrics["online_decisions"] == 6  # r7 is 30 h old
    assert metrics["online_unavailable"] == 1
    # latencies 1, 2, 4, 6, 8, 10 ms: the median 5; the 99th percentile 8 + 0.95 * (10 - 8)
    assert metrics["online_latency_p50_ms"] == pytest.approx(5.0)
    assert metrics["online_latency_p99_ms"] == pytest.approx(9.9)
    # r1, r2, r3 needed a score; r3 did not get one
    assert metrics["online_inference_success_rate"] == pytest.approx(2 / 3)
    # features read for r1, r2, r4, r6; r4's are older than the window
    assert metrics["online_feature_availability"] == pytest.approx(3 / 4)


def test_no_api_decisions_give_no_online_metrics(tmp_path, store_path):
    assert online_seed_metrics(tmp_path / "none.db", NOW, WINDOW_HOURS) == {}
    later = NOW + timedelta(days=3)  # every decision is older than the window
    assert online_seed_metrics(store_path, later, WINDOW_HOURS) == {}


def test_the_online_metrics_join_the_runs_seed_metrics(store_path):
    online = online_seed_metrics(store_path, NOW, WINDOW_HOURS)
    metrics = seed_metrics(RunSummary(run_id="r", status="SUCCESS", seconds=1.0), online)
    assert metrics["online_latency_p99_ms"] == pytest.approx(9.9)
    assert metrics["online_feature_availability"] == pytest.approx(0.75)
    assert metrics["checks_failed"] == 0


def test_requests_that_failed_unrecorded_count_as_failed_inference(store_path):
    """Two failures logged after their answer could not be stored (one inside the window, one
    before it): one more decision, unavailable, that needed a score and did not get one."""
    from orchestration.core.decisioning.realtime.failed_requests import (
        FailedRequest,
        failures_path,
        record_failure,
    )

    log = failures_path(store_path)
    for request_id, hours_ago in (("f1", 2.0), ("f0", 30.0)):
        at = (NOW - timedelta(hours=hours_ago)).isoformat()
        record_failure(log, FailedRequest(request_id, 7, "offer", at, "OperationalError: full"))
    log.open("ab").write(b'{"request_id": "cut sh')  # a write cut short is skipped
    metrics = online_seed_metrics(store_path, NOW, freshness_hours=WINDOW_HOURS)
    assert metrics["online_decisions"] == 7
    assert metrics["online_unavailable"] == 2
    # r1, r2 scored; r3 and f1 needed a score and did not get one
    assert metrics["online_inference_success_rate"] == pytest.approx(2 / 4)
    assert metrics["online_latency_p50_ms"] == pytest.approx(5.0)  # latencies unchanged
