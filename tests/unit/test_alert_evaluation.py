"""From a finished run's facts to alerts: the mapping, stable keys, watched-set semantics, and
the whole path through the incident book to the JSONL log and a local webhook receiver."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestration.core.observability.alerting.evaluate import (
    RUN_KEY,
    CheckFact,
    RunFacts,
    alert_book_path,
    alert_log_path,
    alerts_from_run,
    notify_run,
    parse_breaker_state,
    run_url,
)
from orchestration.core.observability.alerting.incidents import IncidentBook
from orchestration.core.observability.alerting.notifiers import JsonlNotifier, WebhookNotifier

T0 = datetime(2026, 11, 8, 10, 0, tzinfo=UTC)


def fresh(asset: str = "raw/orders", passed: bool = True, lag: float = 3.0) -> CheckFact:
    return CheckFact(
        asset=asset,
        check="fresh_within_window",
        passed=passed,
        description=f"newest row is {lag:.1f} h old (window 24 h)",
        metadata={
            "lag_hours": lag,
            "threshold_hours": 24.0,
            "newest_row_at": "2026-11-01T00:00:00+00:00",
        },
    )


def check(asset: str, name: str, passed: bool, **metadata) -> CheckFact:
    return CheckFact(
        asset=asset, check=name, passed=passed, description=f"{name} says so", metadata=metadata
    )


def good_checks() -> list[CheckFact]:
    return [
        fresh("raw/orders"),
        fresh("raw/engagement_events"),
        check("feature_snapshot", "drift_share_below_threshold", True, drift_share=0.1),
        check("online_features", "online_store_fresh", True, stale_share=0.0, threshold=0.01),
        check("uplift_model", "champion_beats_random", True, qini=0.03, floor=0.0),
        check("campaign_decisions", "audience_compliant", True, violations=0),
    ]


def facts(run_id: str = "run-1", status: str = "SUCCESS", checks=None, **kw) -> RunFacts:
    return RunFacts(
        run_id=run_id, status=status, checks=good_checks() if checks is None else checks, **kw
    )


def replace(checks: list[CheckFact], new: CheckFact) -> list[CheckFact]:
    return [new if c.incident_key == new.incident_key else c for c in checks]


# --- the mapping ------------------------------------------------------------------------


def test_a_good_run_has_nothing_failing_and_watches_every_check_and_the_run():
    failing, watched = alerts_from_run(facts())
    assert failing == {}
    assert watched == {RUN_KEY} | {c.incident_key for c in good_checks()}
    assert "check:raw/orders/fresh_within_window" in watched


@pytest.mark.parametrize(
    ("failed", "kind"),
    [
        (fresh("raw/orders", passed=False, lag=240.0), "freshness"),
        (
            check("online_features", "online_store_fresh", False, stale_share=1.0, threshold=0.01),
            "freshness",
        ),
        (
            check(
                "feature_snapshot",
                "drift_share_below_threshold",
                False,
                drift_share=0.8,
                threshold=0.5,
            ),
            "drift",
        ),
        (
            check("campaign_decisions", "audience_compliant", False, violations=2),
            "policy_violation",
        ),
        (
            check("uplift_model", "champion_beats_random", False, qini=-0.01, floor=0.0),
            "check_failed",
        ),
        (check("audience/spring", "audience_within_send_cap", False, recipients=9), "check_failed"),
    ],
)
def test_each_failed_gate_maps_to_its_kind_with_a_stable_key(failed, kind):
    failing, watched = alerts_from_run(facts(checks=replace(good_checks(), failed) + [failed]))
    key = f"check:{failed.asset}/{failed.check}"
    assert set(failing) == {key}
    alert = failing[key]
    assert (alert.kind, alert.severity, alert.status) == (kind, "critical", "open")
    assert failed.asset in alert.title and failed.check in alert.title
    assert failed.description in alert.detail and "run-1" in alert.detail
    assert alert.links == {"dagster_run": "http://127.0.0.1:3000/runs/run-1"}
    assert key in watched


def test_evidence_is_the_numbers_of_the_check_metadata():
    failed = check(
        "feature_snapshot",
        "drift_share_below_threshold",
        False,
        drift_share=0.8,
        threshold=0.5,
        drifted_columns="a, b",
        sample_rows_per_side=10_000,
        flag=True,
        broken=float("nan"),
    )
    alert = alerts_from_run(facts(checks=[failed]))[0][failed.incident_key]
    assert alert.evidence == {
        "drift_share": 0.8,
        "threshold": 0.5,
        "sample_rows_per_side": 10_000,
        "broken": "nan",
    }
    json.dumps(alert.as_json(), allow_nan=False)  # every sink can carry it


def test_a_failed_non_blocking_check_is_a_warning():
    warn = CheckFact(
        "campaign_definitions", "all_campaign_files_valid", False, severity="WARN", blocking=False
    )
    alert = alerts_from_run(facts(checks=[warn]))[0][warn.incident_key]
    assert (alert.kind, alert.severity) == ("check_failed", "warning")
    assert "non-blocking" in alert.detail


def test_keys_do_not_depend_on_the_run():
    bad = replace(good_checks(), fresh(passed=False, lag=240.0))
    first, _ = alerts_from_run(facts("run-a", "FAILURE", bad), now=T0)
    second, _ = alerts_from_run(facts("run-b", "FAILURE", bad), now=T0 + timedelta(hours=1))
    assert set(first) == set(second) == {"check:raw/orders/fresh_within_window", RUN_KEY}
    assert first[RUN_KEY].links["dagster_run"].endswith("/runs/run-a")
    assert second[RUN_KEY].links["dagster_run"].endswith("/runs/run-b")


def test_a_failed_run_is_a_run_failed_incident():
    failing, watched = alerts_from_run(
        facts("run-9", "FAILURE", checks=[], failed_steps=["campaign_decisions"])
    )
    alert = failing[RUN_KEY]
    assert RUN_KEY == "run:campaign_pipeline" and RUN_KEY in watched
    assert (alert.kind, alert.severity) == ("run_failed", "critical")
    assert "campaign_decisions" in alert.detail and "run-9" in alert.detail
    assert alert.evidence == {"failed_steps": 1, "failed_checks": 0}


def test_a_gate_that_failed_in_a_success_run_still_alerts():
    """Blocking checks skip downstream steps; Dagster may call that run a success."""
    bad = replace(good_checks(), fresh(passed=False, lag=240.0))
    failing, _ = alerts_from_run(facts(status="SUCCESS", checks=bad))
    assert set(failing) == {"check:raw/orders/fresh_within_window"}


def test_open_breakers_alert_and_every_reported_breaker_is_watched():
    breakers = parse_breaker_state("email=closed, sms=open, push=half-open")
    assert breakers == {"email": "closed", "sms": "open", "push": "half-open"}
    assert parse_breaker_state("none") == {} and parse_breaker_state(None) == {}
    failing, watched = alerts_from_run(facts(breakers=breakers))
    assert set(failing) == {"breaker:sms"}
    assert failing["breaker:sms"].kind == "circuit_breaker"
    assert failing["breaker:sms"].evidence == {"provider": "sms", "state": "open"}
    assert {"breaker:email", "breaker:sms", "breaker:push"} <= watched


def test_paths_and_links():
    assert alert_book_path(Path("/d")) == Path("/d/alerts/incidents.db")
    assert alert_log_path(Path("/d")) == Path("/d/alerts/alerts.jsonl")
    assert run_url("abc", "http://ui.local:3000/") == "http://ui.local:3000/runs/abc"


def test_the_mapping_never_imports_dagster():
    code = textwrap.dedent(
        """
        import sys
        import orchestration.core.observability.alerting.evaluate
        assert "dagster" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# --- through the incident book ----------------------------------------------------------


def observe(book: IncidentBook, sink: JsonlNotifier, run: RunFacts, minutes: int):
    failing, watched = alerts_from_run(run, now=T0 + timedelta(minutes=minutes))
    return book.observe(failing, watched, sink, now=T0 + timedelta(minutes=minutes))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_good_run_after_a_bad_one_resolves_its_incidents(tmp_path):
    book = IncidentBook(alert_book_path(tmp_path))
    sink = JsonlNotifier(alert_log_path(tmp_path))
    drift = check(
        "feature_snapshot", "drift_share_below_threshold", False, drift_share=0.8, threshold=0.5
    )
    bad = facts("bad-1", "FAILURE", replace(good_checks(), drift))

    opened = observe(book, sink, bad, 0)
    assert {(a.incident_key, a.status) for a in opened} == {
        ("check:feature_snapshot/drift_share_below_threshold", "open"),
        (RUN_KEY, "open"),
    }
    assert observe(book, sink, facts("bad-2", "FAILURE", bad.checks), 10) == []  # deduplicated

    resolved = observe(book, sink, facts("good-1"), 20)
    assert {(a.incident_key, a.status) for a in resolved} == {
        ("check:feature_snapshot/drift_share_below_threshold", "resolved"),
        (RUN_KEY, "resolved"),
    }
    assert observe(book, sink, facts("good-2"), 30) == []
    logged = lines(alert_log_path(tmp_path))
    assert [(x["incident_key"], x["status"]) for x in logged] == [
        ("check:feature_snapshot/drift_share_below_threshold", "open"),
        (RUN_KEY, "open"),
        ("check:feature_snapshot/drift_share_below_threshold", "resolved"),
        (RUN_KEY, "resolved"),
    ]
    assert logged[0]["kind"] == "drift" and logged[0]["evidence"]["drift_share"] == 0.8
    assert book.open_incidents() == []


def test_a_check_the_run_skipped_stays_open_until_a_run_evaluates_it(tmp_path):
    """A gate upstream failed, so downstream checks did not run: no evidence, no recovery."""
    book = IncidentBook(alert_book_path(tmp_path))
    sink = JsonlNotifier(alert_log_path(tmp_path))
    policy = check("campaign_decisions", "audience_compliant", False, violations=1)
    observe(book, sink, facts("r1", "FAILURE", replace(good_checks(), policy)), 0)
    # the next run stops at stale raw data: audience_compliant is not evaluated
    observe(book, sink, facts("r2", "FAILURE", [fresh(passed=False, lag=240.0)]), 10)
    assert {i["incident_key"] for i in book.open_incidents()} == {
        "check:campaign_decisions/audience_compliant",
        "check:raw/orders/fresh_within_window",
        RUN_KEY,
    }
    resolved = observe(book, sink, facts("r3"), 20)
    assert {a.incident_key for a in resolved} == {
        "check:campaign_decisions/audience_compliant",
        "check:raw/orders/fresh_within_window",
        RUN_KEY,
    }


# --- webhook drill -----------------------------------------------------------------------


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/services/T0/B0/token"


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with self.server.lock:
            self.server.posts.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet test output
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_webhook_drill_one_post_per_incident_and_one_recovery(tmp_path, receiver):
    env = {"CAMPAIGN_ALERT_NOTIFIERS": "log,webhook", "CAMPAIGN_ALERT_WEBHOOK_URL": receiver.url}
    online = check("online_features", "online_store_fresh", False, stale_share=1.0, threshold=0.01)
    bad = facts("bad-1", "SUCCESS", replace(good_checks(), online))

    first = notify_run(bad, tmp_path, env, now=T0)
    second = notify_run(facts("bad-2", "SUCCESS", bad.checks), tmp_path, env, now=T0)
    assert first.sink == "fanout(log,webhook)" and first.undelivered == {}
    assert [a.incident_key for a in first.sent] == ["check:online_features/online_store_fresh"]
    assert second.sent == []
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["text"].startswith("[CRITICAL] OPEN freshness check:online_features/")
    section = post["blocks"][0]["text"]["text"]
    assert "stale_share=1.0" in section and "http://127.0.0.1:3000/runs/bad-1" in section

    recovered = notify_run(facts("good-1"), tmp_path, env, now=T0 + timedelta(hours=1))
    assert [(a.incident_key, a.status) for a in recovered.sent] == [
        ("check:online_features/online_store_fresh", "resolved")
    ]
    assert len(receiver.posts) == 2
    assert receiver.posts[1]["text"].startswith("[CRITICAL] RESOLVED freshness")
    # the local log holds both, in the default place
    logged = lines(tmp_path / "alerts" / "alerts.jsonl")
    assert [x["status"] for x in logged] == ["open", "resolved"]
    assert first.log_path == tmp_path / "alerts" / "alerts.jsonl"


def test_a_dead_webhook_is_reported_and_retried_on_the_next_evaluation(
    tmp_path, receiver, monkeypatch
):
    monkeypatch.setattr(WebhookNotifier, "BACKOFF", (0.0, 0.0))
    dead = {
        "CAMPAIGN_ALERT_NOTIFIERS": "log,webhook",
        "CAMPAIGN_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/x",
    }
    report = notify_run(facts("bad-1", "FAILURE", checks=[]), tmp_path, dead, now=T0)
    assert report.sent == [] and set(report.undelivered) == {RUN_KEY}
    live = {"CAMPAIGN_ALERT_NOTIFIERS": "log,webhook", "CAMPAIGN_ALERT_WEBHOOK_URL": receiver.url}
    retried = notify_run(facts("bad-2", "FAILURE", checks=[]), tmp_path, live, now=T0)
    assert [a.incident_key for a in retried.sent] == [RUN_KEY]
    assert len(receiver.posts) == 1
