"""POST /v1/decisions and GET /v1/health in-process (FastAPI's TestClient, no network)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import pytest

from orchestration.core.common.hashing import in_share
from orchestration.core.decisioning.engine import REASONS
from orchestration.core.decisioning.realtime import api_decisions, store_path
from tests.api.conftest import (
    CAMPAIGN,
    FEATURE_VERSION,
    NOW,
    auth,
    body,
    make_client,
    uplift_of,
    write_campaign,
)

BATCH_COLUMNS = [
    "run_id",
    "campaign",
    "channel",
    "customer_id",
    "decision",
    "reason",
    "predicted_uplift",
    "expected_net_value",
    "value_rank",
    "model_version",
    "scored_by",
    "policy_version",
    "feature_timestamp",
    "decided_at",
    "deferred_until",
    "dry_run",
]


def _plain_customers(n: int = 59) -> list[int]:
    """Customers 10..n that are neither in the global control group nor the holdout."""
    ids = np.arange(10, n + 1)
    control = in_share(ids, 0.05, "global-control-v1")
    held = in_share(ids, 0.1, f"holdout:{CAMPAIGN}")
    return [int(c) for c in ids[~control & ~held]]


def _post(client, token, request_id, customer_id, campaign=CAMPAIGN):
    return client.post(
        "/v1/decisions", json=body(request_id, customer_id, campaign), headers=auth(token)
    )


# --- access ---------------------------------------------------------------------------------


def test_a_missing_or_wrong_token_is_401(client, decide_token):
    customer = _plain_customers()[0]
    assert client.post("/v1/decisions", json=body("r1", customer)).status_code == 401
    wrong = decide_token[:-4] + "AAAA"
    for header in (f"Bearer {wrong}", f"Basic {decide_token}", "Bearer cmp_nope_x", "Bearer"):
        response = client.post(
            "/v1/decisions", json=body("r1", customer), headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer"
        assert "campaign token create" in response.json()["detail"]


def test_a_revoked_token_is_refused_from_its_next_request(client, tokens, decide_token):
    customer = _plain_customers()[0]
    assert _post(client, decide_token, "r1", customer).status_code == 200
    tokens.revoke("client")
    assert _post(client, decide_token, "r2", customer).status_code == 401


def test_a_token_without_the_scope_is_403(client, tokens):
    _, events_only = tokens.create(["events"], "events-client")
    response = _post(client, events_only, "r1", _plain_customers()[0])
    assert response.status_code == 403
    assert "'decide' scope" in response.json()["detail"]
    _, decider = tokens.create(["decide"], "decider")
    assert client.post("/v1/admin/refresh", headers=auth(decider)).status_code == 403
    _, admin = tokens.create(["admin"], "operator")
    refreshed = client.post("/v1/admin/refresh", headers=auth(admin))
    assert refreshed.status_code == 200 and refreshed.json()["status"] == "ok"


def test_over_the_rate_limit_is_429_with_retry_after(api_settings, service, tokens):
    _, token = tokens.create(["decide"], "bursty")
    _, other = tokens.create(["decide"], "calm")
    customer = _plain_customers()[0]
    with make_client(api_settings, service, tokens, rate_per_second=0.5, burst=2) as client:
        codes = [_post(client, token, f"r{i}", customer).status_code for i in range(3)]
        assert codes == [200, 200, 429]
        limited = _post(client, token, "r9", customer)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert "rate limit" in limited.json()["detail"]
        # the bucket is per token
        assert _post(client, other, "r10", customer).status_code == 200


# --- answers --------------------------------------------------------------------------------


def test_a_decision_answers_the_engine_decision_with_versions_and_latency(
    client, decide_token, service, online_features
):
    online_features()
    customer = _plain_customers()[0]
    answer = _post(client, decide_token, "r1", customer).json()
    assert answer["decision"] == "send" and answer["reason"] == "selected_top_uplift"
    assert answer["score"] == pytest.approx(uplift_of([customer])[0], abs=1e-12)
    assert answer["expected_net_value"] == pytest.approx(answer["score"] * 45.0 - 0.002)
    assert answer["propensity"] == 1.0
    assert answer["model_version"] == "3" and answer["scored_by"] == "champion"
    assert answer["policy_version"] == service.state.policy.version
    assert answer["feature_version"] == FEATURE_VERSION
    assert answer["feature_timestamp"] == (NOW - timedelta(hours=1)).isoformat()
    assert answer["release"] == "run-released-1"
    assert answer["decided_at"] == NOW.isoformat()
    assert set(answer["latency_ms"]) == {"features", "score", "policy", "total"}
    assert answer["latency_ms"]["total"] >= answer["latency_ms"]["policy"] >= 0
    assert answer["replayed"] is False


@pytest.mark.parametrize(
    ("customer", "reason"),
    [
        (7, "no_consent_on_channel"),  # opted out an hour before the request
        (8, "suppressed"),  # suppressed on every channel
        (9, "no_verified_contact_point"),
    ],
)
def test_consent_suppression_and_reachability_are_read_as_of_the_request(
    client, decide_token, customer, reason
):
    answer = _post(client, decide_token, f"r{customer}", customer).json()
    if not in_share(np.array([customer]), 0.05, "global-control-v1")[0]:
        assert (answer["decision"], answer["reason"]) == ("excluded", reason)


def test_the_global_control_group_and_the_holdout_use_the_batch_hashes(client, decide_token):
    ids = np.arange(10, 60)
    control = in_share(ids, 0.05, "global-control-v1")
    held = in_share(ids, 0.1, f"holdout:{CAMPAIGN}") & ~control
    answers = {int(c): _post(client, decide_token, f"h{c}", int(c)).json() for c in ids}
    for c, is_control, is_held in zip(ids, control, held, strict=True):
        expected = "control" if is_control else "holdout" if is_held else "send"
        assert answers[int(c)]["decision"] == expected, c
    assert all(a["reason"] in REASONS for a in answers.values())


def test_the_same_request_id_gets_the_same_stored_answer_and_no_second_row(
    client, decide_token, api_settings
):
    customer = _plain_customers()[0]
    first = _post(client, decide_token, "same-id", customer).json()
    second = _post(client, decide_token, "same-id", customer).json()
    assert second["replayed"] is True
    assert {k: v for k, v in second.items() if k != "replayed"} == {
        k: v for k, v in first.items() if k != "replayed"
    }
    rows = api_decisions(api_settings.decisions_dir, customer, None, NOW.date().isoformat())
    assert len(rows) == 1
    reused = _post(client, decide_token, "same-id", customer + 1)
    assert reused.status_code == 409 and "already used" in reused.json()["detail"]


def test_concurrent_requests_are_decided_together_and_each_gets_its_own_answer(
    client, decide_token
):
    customers = _plain_customers()
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda c: _post(client, decide_token, f"c{c}", c).json(), customers)
        )
    assert [a["customer_id"] for a in answers] == customers
    assert [a["request_id"] for a in answers] == [f"c{c}" for c in customers]
    assert all(a["decision"] == "send" for a in answers)
    assert [a["score"] for a in answers] == pytest.approx(list(uplift_of(customers)), abs=1e-12)


def test_an_unknown_campaign_is_404_with_the_known_ones(client, decide_token):
    response = _post(client, decide_token, "r1", 12, campaign="no_such_campaign")
    assert response.status_code == 404
    assert "unknown campaign 'no_such_campaign'" in response.json()["detail"]
    assert CAMPAIGN in response.json()["detail"]


def test_decisions_are_stored_in_the_batch_schema_and_nothing_reaches_the_ledger(
    client, decide_token, api_settings
):
    for i, customer in enumerate(_plain_customers()[:5]):
        assert _post(client, decide_token, f"s{i}", customer).status_code == 200
    frame = api_decisions(api_settings.decisions_dir, _plain_customers()[0], CAMPAIGN, "2026-03-02")
    assert set(BATCH_COLUMNS) <= set(frame.columns)
    assert frame["decided_via"].tolist() == ["api"] and frame["run_id"].tolist() == ["api"]
    assert store_path(api_settings).exists()
    # outside the batch runs' glob: the batch's decision store does not see API rows
    assert not list(api_settings.decisions_dir.glob("decided_on=*/run=*.parquet"))
    # the API never sends: no ledger, no outbox was created
    assert not (api_settings.gateway_dir / "ledger.db").exists()
    assert not (api_settings.gateway_dir / "outbox.db").exists()


# --- safe defaults --------------------------------------------------------------------------


def _safe(client, token, request_id, customer):
    answer = _post(client, token, request_id, customer).json()
    return answer["decision"], answer["reason"], answer


def test_a_model_version_that_is_not_released_answers_no_send(
    client, decide_token, loader, service
):
    customer = _plain_customers()[0]
    loader.versions = {"champion": "4"}  # the alias moved; no release has version 4 yet
    loader.bump()
    assert service.refresh(force=False) is False  # checked at most every refresh_seconds ...
    assert service.refresh(force=True) is True  # ... or when asked
    decision, reason, answer = _safe(client, decide_token, "m1", customer)
    assert (decision, reason) == ("no_send", "not_released")
    assert answer["model_version"] == "4"
    health = client.get("/v1/health").json()
    assert health["models"] == {"uplift_model@champion": "4"}


@pytest.mark.parametrize("change", ["no_release", "policy", "features", "campaign_file"])
def test_any_version_that_is_not_the_standing_releases_answers_not_released(
    client, decide_token, loader, service, api_settings, change
):
    if change == "no_release":
        loader.has_release = False
    elif change == "policy":
        loader.release_policy = "000000000000"
    elif change == "features":
        loader.release_features = "20260301T000000Z-older"
    else:  # edited after the release: the released hash is of the old file
        loader.load = _with_old_campaign_hash(loader.load)
    loader.bump()
    service.refresh(force=True)
    decision, reason, answer = _safe(client, decide_token, f"n-{change}", _plain_customers()[0])
    assert (decision, reason) == ("no_send", "not_released")
    assert answer["detail"]
    health = client.get("/v1/health").json()
    if change != "campaign_file":
        assert health["released"] is False and health["status"] == "degraded"
        assert health["not_released_because"]
    else:
        assert health["campaigns"][CAMPAIGN]["released"] is False


def _with_old_campaign_hash(load):
    from dataclasses import replace

    def patched(previous, signature):
        state = load(previous, signature)
        release = replace(state.release, campaign_files={f"{CAMPAIGN}.yaml": "0" * 64})
        return replace(state, release=release)

    return patched


def test_stale_or_missing_online_features_answer_stale_features(
    client, decide_token, online_features
):
    fresh, stale, missing = _plain_customers()[:3]
    online_features({stale: NOW - timedelta(hours=49), missing: None})  # window: 48 h
    assert _safe(client, decide_token, "f1", fresh)[:2] == ("send", "selected_top_uplift")
    assert _safe(client, decide_token, "f2", stale)[:2] == ("no_send", "stale_features")
    assert _safe(client, decide_token, "f3", missing)[:2] == ("no_send", "stale_features")


def test_an_unknown_customer_and_a_disabled_campaign_answer_no_send(
    client, decide_token, api_settings, loader, service
):
    assert _safe(client, decide_token, "u1", 60)[:2] == ("no_send", "unknown_customer")  # tomorrow
    assert _safe(client, decide_token, "u2", 10_000)[:2] == ("no_send", "unknown_customer")
    write_campaign(api_settings.campaigns_dir, "paused_offer", enabled=False)
    loader.bump()
    service.refresh(force=True)
    assert _safe(
        client,
        decide_token,
        "u3",
        12,
    )[:2] != ("no_send", "campaign_disabled")
    answer = _post(client, decide_token, "u4", 12, campaign="paused_offer").json()
    assert (answer["decision"], answer["reason"]) == ("no_send", "campaign_disabled")


def test_a_canary_answers_the_challenger_share_as_propensity(
    client, decide_token, api_settings, loader, service
):
    write_campaign(api_settings.campaigns_dir, CAMPAIGN, challenger_share=0.3)
    loader.versions = {"champion": "3", "challenger": "5"}
    loader.release_models = frozenset({"3", "5"})
    loader.bump()
    service.refresh(force=True)
    answers = [_post(client, decide_token, f"k{c}", c).json() for c in range(10, 59)]
    by = {a["scored_by"]: a for a in answers}
    assert set(by) == {"champion", "challenger"}
    for a in answers:
        expected = 0.3 if a["scored_by"] == "challenger" else 0.7
        assert a["propensity"] == pytest.approx(expected)
        assert a["model_version"] == ("5" if a["scored_by"] == "challenger" else "3")
    canary = in_share(np.arange(10, 59), 0.3, f"canary:{CAMPAIGN}")
    assert [a["scored_by"] == "challenger" for a in answers] == canary.tolist()


# --- health ---------------------------------------------------------------------------------


def test_health_reports_the_loaded_versions_and_the_online_freshness(
    client, service, online_features
):
    online_features()
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["released"] is True
    assert health["models"] == {"uplift_model@champion": "3"}
    assert health["policy_version"] == service.state.policy.version
    assert health["feature_version"] == FEATURE_VERSION
    assert health["release"]["run_id"] == "run-released-1"
    assert health["campaigns"][CAMPAIGN] == {
        "enabled": True,
        "dry_run": False,
        "released": True,
        "canary_share": 0.0,
    }
    online = health["online_store"]
    assert online["sampled"] == 60 and online["stale"] == 0
    assert online["oldest_age_hours"] == pytest.approx(1.0)
    assert online["window_hours"] == 48.0


def test_each_decision_has_its_own_trace_with_the_stage_latencies(
    client, decide_token, api_settings, service
):
    from orchestration.core.observability.tracing import read_trace

    customer = _plain_customers()[0]
    first = _post(client, decide_token, "trace-1", customer).json()
    second = _post(client, decide_token, "trace-2", customer).json()
    replay = _post(client, decide_token, "trace-1", customer).json()
    assert len(first["trace_id"]) == 32 and first["trace_id"] != second["trace_id"]
    assert replay["trace_id"] == first["trace_id"]  # the stored answer, not a new trace
    service.tracer.flush()  # spans are exported in batches, within a second
    (span,) = read_trace(api_settings.traces_file, first["trace_id"])
    assert span["name"] == f"decision {first['campaign']}"
    assert span["attributes"]["request_id"] == "trace-1"
    assert span["attributes"]["decision"] == first["decision"]
    for stage in ("features", "score", "policy", "total"):
        assert span["attributes"][f"latency_ms.{stage}"] >= 0


def test_a_request_failing_after_the_decision_is_unavailable_and_counted(
    client, service, decide_token, monkeypatch
):
    """The store breaks (disk full): the answer is the safe default, nothing is stored, and the
    failure log makes the seed metrics count it (inference success 0 of 1)."""
    import sqlite3

    from orchestration.core.decisioning.realtime.online_metrics import online_seed_metrics

    def broken(rows):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(service.store, "put_many", broken)
    customer = _plain_customers()[0]
    answer = _post(client, decide_token, "fails-1", customer).json()
    assert (answer["decision"], answer["reason"]) == ("no_send", "unavailable")
    assert "disk is full" in answer["detail"]
    assert service.store.get("fails-1") is None
    metrics = online_seed_metrics(service.store.path, NOW + timedelta(minutes=1), 48.0)
    assert metrics["online_decisions"] == 1
    assert metrics["online_unavailable"] == 1
    assert metrics["online_inference_success_rate"] == 0.0
