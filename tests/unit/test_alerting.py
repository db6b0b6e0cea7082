"""Alerting core: sinks against real local servers, and the incident book's dedup/recovery."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from orchestration.core.observability.alerting.incidents import IncidentBook, UndeliveredAlertsError
from orchestration.core.observability.alerting.notifiers import (
    Alert,
    FanoutNotifier,
    JsonlNotifier,
    NotificationError,
    SmtpNotifier,
    WebhookNotifier,
    notifier_from_env,
)

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
KEY = "check:raw/orders/raw_orders_fresh"


def make_alert(key: str = KEY, status: str = "open", **overrides) -> Alert:
    fields = {
        "incident_key": key,
        "kind": "freshness",
        "severity": "critical",
        "status": status,
        "title": "Raw orders are stale",
        "detail": "Newest order is 30.0 h old; the window is 24 h.",
        "occurred_at": T0.isoformat(),
        "evidence": {"value": 30.0, "threshold": 24},
        "links": {"dagster_run": "http://dagster.local/runs/abc123"},
    }
    fields.update(overrides)
    return Alert(**fields)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    name = "recorder"

    def __init__(self, fail_times: int = 0) -> None:
        self.alerts: list[Alert] = []
        self.calls = 0
        self.fail_times = fail_times

    def notify(self, alert: Alert) -> None:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise NotificationError(f"sink down (call {self.calls})")
        self.alerts.append(alert)


# --- local webhook receiver ---------------------------------------------------------------


class _WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.requests: list[dict] = []  # every POST body, whatever it was answered
        self.delivered: list[dict] = []  # bodies answered 2xx
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/services/T000/B000/secret-token"


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        with self.server.lock:
            status = self.server.statuses.pop(0) if self.server.statuses else 200
            self.server.requests.append(body)
            if 200 <= status < 300:
                self.server.delivered.append(body)
        reply = b"ok" if status == 200 else b"upstream_error"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep test output quiet
        pass


@pytest.fixture
def webhook() -> Iterator[_WebhookServer]:
    server = _WebhookServer()
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


def test_webhook_payload_is_slack_compatible(webhook):
    WebhookNotifier(webhook.url).notify(make_alert())

    assert len(webhook.delivered) == 1
    body = webhook.delivered[0]
    assert set(body) == {"text", "blocks"}
    assert "Raw orders are stale" in body["text"] and "\n" not in body["text"]
    assert KEY in body["text"] and "CRITICAL" in body["text"]
    (block,) = body["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    text = block["text"]["text"]
    for expected in (
        "Raw orders are stale",
        "Newest order is 30.0 h old",
        "critical",
        "open",
        "value=30.0",
        "threshold=24",
        "<http://dagster.local/runs/abc123|dagster_run>",
    ):
        assert expected in text, expected


def test_webhook_escapes_mrkdwn_control_characters(webhook):
    WebhookNotifier(webhook.url).notify(make_alert(title="rows < 10 & falling"))
    text = webhook.delivered[0]["blocks"][0]["text"]["text"]
    assert "rows &lt; 10 &amp; falling" in text


def test_webhook_retries_5xx_and_delivers_once(webhook):
    webhook.statuses = [500, 500, 200]
    waits: list[float] = []
    WebhookNotifier(webhook.url, sleep=waits.append).notify(make_alert())

    assert len(webhook.requests) == 3
    assert len(webhook.delivered) == 1
    assert webhook.requests[0] == webhook.requests[2]  # the same payload each time
    assert waits == [0.2, 0.4]  # backed off between attempts, longer each time


def test_webhook_gives_up_after_three_attempts_naming_host_not_secret(webhook):
    webhook.statuses = [503, 503, 503, 200]
    with pytest.raises(NotificationError) as caught:
        WebhookNotifier(webhook.url, sleep=lambda _: None).notify(make_alert())
    message = str(caught.value)
    assert "127.0.0.1" in message and "503" in message
    assert "secret-token" not in message
    assert len(webhook.requests) == 3 and webhook.delivered == []


def test_webhook_does_not_retry_client_errors(webhook):
    webhook.statuses = [404]
    with pytest.raises(NotificationError, match="404"):
        WebhookNotifier(webhook.url, sleep=lambda _: None).notify(make_alert())
    assert len(webhook.requests) == 1


def test_webhook_transport_error_is_a_notification_error():
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with pytest.raises(NotificationError, match=r"127\.0\.0\.1.*3 attempts"):
        WebhookNotifier(url, timeout=1.0, sleep=lambda _: None).notify(make_alert())


# --- local SMTP server ------------------------------------------------------------------


class _SmtpHandler:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, _SmtpHandler]]:
    handler = _SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def _smtp(controller: Controller) -> SmtpNotifier:
    return SmtpNotifier(
        "127.0.0.1",
        controller.port,
        "alerts@campaigns.example",
        ["oncall@example.com", "data@example.com"],
        timeout=5.0,
    )


def test_smtp_sends_plain_text_email(smtp_server):
    controller, handler = smtp_server
    _smtp(controller).notify(make_alert())

    (mail_from, rcpt_tos, message) = handler.envelopes[0]
    assert len(handler.envelopes) == 1
    assert mail_from == "alerts@campaigns.example"
    assert rcpt_tos == ["oncall@example.com", "data@example.com"]
    assert message["Subject"] == "[CRITICAL] Raw orders are stale"
    assert message["X-Campaign-Incident"] == KEY
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    assert "Newest order is 30.0 h old" in body
    assert "value = 30.0" in body and "threshold = 24" in body
    assert "dagster_run: http://dagster.local/runs/abc123" in body


def test_smtp_marks_resolved_alerts(smtp_server):
    controller, handler = smtp_server
    _smtp(controller).notify(
        make_alert(status="resolved", severity="warning", title="Resolved: Raw orders are stale")
    )
    subject = handler.envelopes[0][2]["Subject"]
    assert subject == "[RESOLVED] [WARNING] Resolved: Raw orders are stale"


def test_smtp_unreachable_is_a_notification_error():
    port = free_port()
    notifier = SmtpNotifier("127.0.0.1", port, "a@example.com", ["b@example.com"], timeout=2.0)
    with pytest.raises(NotificationError, match=f"127.0.0.1:{port}"):
        notifier.notify(make_alert())


# --- fan-out and the environment --------------------------------------------------------


def test_fanout_calls_every_sink_and_reports_the_failures():
    broken, healthy = Recorder(fail_times=99), Recorder()
    broken.name = "broken"
    with pytest.raises(NotificationError, match="broken: sink down"):
        FanoutNotifier([broken, healthy]).notify(make_alert())
    assert len(healthy.alerts) == 1 and broken.calls == 1


def test_default_notifier_is_a_jsonl_log(tmp_path, caplog):
    default = tmp_path / "alerts" / "alerts.jsonl"
    notifier = notifier_from_env({}, default)
    assert isinstance(notifier, JsonlNotifier) and notifier.path == default

    with caplog.at_level(logging.INFO, logger="campaign.alerts"):
        notifier.notify(make_alert())
        notifier.notify(make_alert(key="run:campaign_sends", kind="run_failed", status="resolved"))

    lines = [json.loads(line) for line in default.read_text().splitlines()]
    assert [line["incident_key"] for line in lines] == [KEY, "run:campaign_sends"]
    assert lines[0] == make_alert().as_json()
    levels = [(r.name, r.levelno) for r in caplog.records]
    assert levels == [("campaign.alerts", logging.WARNING), ("campaign.alerts", logging.INFO)]


def test_alert_log_path_can_be_overridden(tmp_path):
    target = tmp_path / "elsewhere.jsonl"
    notifier = notifier_from_env({"CAMPAIGN_ALERT_LOG": str(target)}, tmp_path / "default.jsonl")
    notifier.notify(make_alert())
    assert len(target.read_text().splitlines()) == 1
    assert not (tmp_path / "default.jsonl").exists()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CAMPAIGN_ALERT_NOTIFIERS": "webhook"}, "CAMPAIGN_ALERT_WEBHOOK_URL"),
        (
            {"CAMPAIGN_ALERT_NOTIFIERS": "webhook", "CAMPAIGN_ALERT_WEBHOOK_URL": "hooks"},
            "CAMPAIGN_ALERT_WEBHOOK_URL",
        ),
        ({"CAMPAIGN_ALERT_NOTIFIERS": "log,pager"}, "CAMPAIGN_ALERT_NOTIFIERS"),
        ({"CAMPAIGN_ALERT_NOTIFIERS": "smtp"}, "CAMPAIGN_ALERT_SMTP_HOST"),
        (
            {"CAMPAIGN_ALERT_NOTIFIERS": "smtp", "CAMPAIGN_ALERT_SMTP_HOST": "mail"},
            "CAMPAIGN_ALERT_SMTP_FROM",
        ),
        (
            {
                "CAMPAIGN_ALERT_NOTIFIERS": "smtp",
                "CAMPAIGN_ALERT_SMTP_HOST": "mail",
                "CAMPAIGN_ALERT_SMTP_PORT": "twenty-five",
            },
            "CAMPAIGN_ALERT_SMTP_PORT",
        ),
        (
            {
                "CAMPAIGN_ALERT_NOTIFIERS": "smtp",
                "CAMPAIGN_ALERT_SMTP_HOST": "mail",
                "CAMPAIGN_ALERT_SMTP_FROM": "a@example.com",
            },
            "CAMPAIGN_ALERT_SMTP_TO",
        ),
    ],
)
def test_missing_or_invalid_settings_name_the_variable(tmp_path, env, variable):
    with pytest.raises(ValueError, match=variable) as caught:
        notifier_from_env(env, tmp_path / "alerts.jsonl")
    assert "set it to" in str(caught.value)


def test_webhook_from_env_always_keeps_the_local_log(tmp_path, webhook):
    log = tmp_path / "alerts.jsonl"
    notifier = notifier_from_env(
        {"CAMPAIGN_ALERT_NOTIFIERS": "webhook", "CAMPAIGN_ALERT_WEBHOOK_URL": webhook.url}, log
    )
    assert isinstance(notifier, FanoutNotifier)
    assert [type(n) for n in notifier.notifiers] == [JsonlNotifier, WebhookNotifier]

    notifier.notify(make_alert())
    assert len(webhook.delivered) == 1
    assert [json.loads(x)["incident_key"] for x in log.read_text().splitlines()] == [KEY]


def test_smtp_from_env(tmp_path):
    notifier = notifier_from_env(
        {
            "CAMPAIGN_ALERT_NOTIFIERS": "log, smtp",
            "CAMPAIGN_ALERT_SMTP_HOST": "mail.internal",
            "CAMPAIGN_ALERT_SMTP_FROM": "alerts@example.com",
            "CAMPAIGN_ALERT_SMTP_TO": "a@example.com, b@example.com",
        },
        tmp_path / "alerts.jsonl",
    )
    assert isinstance(notifier, FanoutNotifier)
    smtp = notifier.notifiers[1]
    assert isinstance(smtp, SmtpNotifier)
    assert (smtp.host, smtp.port) == ("mail.internal", 25)
    assert smtp.recipients == ["a@example.com", "b@example.com"]


def test_alert_rejects_unknown_kind_and_severity():
    with pytest.raises(ValueError, match="kind"):
        make_alert(kind="freshnes")
    with pytest.raises(ValueError, match="severity"):
        make_alert(severity="high")


# --- incident book ----------------------------------------------------------------------


def tick(book: IncidentBook, sink, minutes: int, failing: bool, key: str = KEY) -> list[Alert]:
    alerts = {key: make_alert(key)} if failing else {}
    return book.observe(alerts, {key}, sink, now=T0 + timedelta(minutes=minutes))


def test_a_failure_seen_on_three_ticks_notifies_once(tmp_path):
    book, sink = IncidentBook(tmp_path / "incidents.db"), Recorder()
    sent = [tick(book, sink, m, failing=True) for m in (0, 5, 10)]

    assert [len(s) for s in sent] == [1, 0, 0]
    assert [a.status for a in sink.alerts] == ["open"]
    (incident,) = book.open_incidents()
    assert incident["incident_key"] == KEY and incident["notified_open"] is True
    assert incident["opened_at"] == T0.isoformat()
    assert incident["last_seen_at"] == (T0 + timedelta(minutes=10)).isoformat()
    assert incident["evidence"] == {"value": 30.0, "threshold": 24}


def test_recovery_is_sent_once_and_a_relapse_opens_a_new_incident(tmp_path):
    book, sink = IncidentBook(tmp_path / "incidents.db"), Recorder()
    tick(book, sink, 0, failing=True)
    tick(book, sink, 5, failing=True)

    (recovery,) = tick(book, sink, 10, failing=False)
    assert recovery.status == "resolved" and recovery.incident_key == KEY
    assert recovery.title == "Resolved: Raw orders are stale"
    assert recovery.evidence["open_for_seconds"] == 600
    assert tick(book, sink, 15, failing=False) == []
    assert book.open_incidents() == []

    (relapse,) = tick(book, sink, 20, failing=True)
    assert relapse.status == "open"
    assert [a.status for a in sink.alerts] == ["open", "resolved", "open"]
    history = book.history()
    assert [(h["incident_key"], h["status"]) for h in history] == [
        (KEY, "open"),
        (KEY, "resolved"),
    ]
    assert history[1]["resolved_at"] == (T0 + timedelta(minutes=10)).isoformat()
    assert history[0]["opened_at"] == (T0 + timedelta(minutes=20)).isoformat()


def test_keys_outside_watched_are_left_alone(tmp_path):
    book, sink = IncidentBook(tmp_path / "incidents.db"), Recorder()
    tick(book, sink, 0, failing=True, key="check:a")
    # Another caller, responsible only for check:b, must not resolve check:a.
    tick(book, sink, 5, failing=False, key="check:b")
    assert [i["incident_key"] for i in book.open_incidents()] == ["check:a"]
    assert [a.status for a in sink.alerts] == ["open"]


def test_a_failed_delivery_is_retried_next_tick_and_sent_once(tmp_path):
    book, sink = IncidentBook(tmp_path / "incidents.db"), Recorder(fail_times=1)
    with pytest.raises(UndeliveredAlertsError) as caught:
        tick(book, sink, 0, failing=True)
    assert KEY in caught.value.failures and caught.value.sent == []
    (incident,) = book.open_incidents()
    assert incident["notified_open"] is False
    assert incident["opened_at"] == T0.isoformat()

    assert len(tick(book, sink, 5, failing=True)) == 1
    assert tick(book, sink, 10, failing=True) == []
    assert [a.status for a in sink.alerts] == ["open"] and sink.calls == 2
    assert book.open_incidents()[0]["notified_open"] is True


def test_a_failed_recovery_keeps_the_incident_open_until_delivered(tmp_path):
    book, sink = IncidentBook(tmp_path / "incidents.db"), Recorder()
    tick(book, sink, 0, failing=True)
    sink.fail_times = sink.calls + 1  # the next call fails
    with pytest.raises(UndeliveredAlertsError):
        tick(book, sink, 5, failing=False)
    assert len(book.open_incidents()) == 1

    (recovery,) = tick(book, sink, 10, failing=False)
    assert recovery.status == "resolved"
    assert tick(book, sink, 15, failing=False) == []
    assert [a.status for a in sink.alerts] == ["open", "resolved"]


def test_one_failing_delivery_does_not_block_other_keys(tmp_path):
    class Picky(Recorder):
        def notify(self, alert: Alert) -> None:
            if alert.incident_key == "check:bad":
                raise NotificationError("rejected")
            super().notify(alert)

    book, sink = IncidentBook(tmp_path / "incidents.db"), Picky()
    failing = {k: make_alert(k) for k in ("check:bad", "check:good")}
    with pytest.raises(UndeliveredAlertsError) as caught:
        book.observe(failing, set(failing), sink, now=T0)
    assert list(caught.value.failures) == ["check:bad"]
    assert [a.incident_key for a in caught.value.sent] == ["check:good"]
    assert [a.incident_key for a in sink.alerts] == ["check:good"]


def test_two_books_on_one_file_behave_as_one(tmp_path):
    path = tmp_path / "incidents.db"
    first, second = IncidentBook(path), IncidentBook(path)
    sink = Recorder()

    assert len(tick(first, sink, 0, failing=True)) == 1
    assert tick(second, sink, 5, failing=True) == []
    assert len(tick(second, sink, 10, failing=False)) == 1
    assert tick(first, sink, 15, failing=False) == []
    assert [a.status for a in sink.alerts] == ["open", "resolved"]
    assert first.history() == second.history()


_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from orchestration.core.observability.alerting.incidents import IncidentBook
    from orchestration.core.observability.alerting.notifiers import Alert, JsonlNotifier

    db, log, start, ready = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    book, sink = IncidentBook(db), JsonlNotifier(log)
    ready.touch()  # imported and connected: ready to race
    while not start.exists():
        pass
    keys = [f"check:k{i}" for i in range(20)]
    for _ in range(3):
        failing = {
            k: Alert(k, "check_failed", "warning", "open", f"{k} failed", "d", "2026-01-01T00:00:00+00:00")
            for k in keys
        }
        book.observe(failing, set(keys), sink)
    assert "dagster" not in sys.modules, "the alerting core must not import dagster"
    """
)


def test_two_processes_share_one_book_without_duplicate_alerts(tmp_path):
    db, log, start = tmp_path / "incidents.db", tmp_path / "alerts.jsonl", tmp_path / "go"
    IncidentBook(db)  # create the schema up front
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), str(log), str(start), str(flag)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    # Start the race only once both have imported and opened the book (an event, not a delay).
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready):
        assert time.monotonic() < deadline, "the workers never became ready"
        assert all(w.poll() is None for w in workers), "a worker exited before the race"
        time.sleep(0.01)
    start.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err

    keys = [json.loads(line)["incident_key"] for line in log.read_text().splitlines()]
    assert sorted(keys) == sorted(f"check:k{i}" for i in range(20))  # each exactly once
    assert len(IncidentBook(db).open_incidents()) == 20
