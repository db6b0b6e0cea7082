"""Alerts and the sinks that deliver them: a local JSONL log, a Slack-compatible webhook, SMTP.

Plain Python (never dagster) so sensors, the CLI and tests can share it. The JSONL log is always
configured by ``notifier_from_env`` so there is a local record even when a remote sink is down.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

KINDS = ("freshness", "check_failed", "run_failed", "circuit_breaker", "policy_violation", "drift")
SEVERITIES = ("critical", "warning", "info")
OPEN = "open"
RESOLVED = "resolved"
STATUSES = (OPEN, RESOLVED)

LOGGER_NAME = "campaign.alerts"
NOTIFIER_NAMES = ("log", "webhook", "smtp")


class NotificationError(RuntimeError):
    """An alert could not be delivered; callers keep the incident un-notified and retry."""


def utc_iso(moment: datetime | None = None) -> str:
    """ISO-8601 in UTC; naive datetimes are taken to be UTC already."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Alert:
    """One alert about one incident, either opening (``status="open"``) or resolving it.

    ``incident_key`` identifies the incident across ticks (e.g. ``check:raw/orders/fresh``); it
    is what deduplication keys on, so it must not contain run ids or timestamps.
    """

    incident_key: str
    kind: str
    severity: str
    status: str
    title: str
    detail: str
    occurred_at: str
    evidence: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Validate early: a typo in a kind or severity would otherwise surface only in a sink.
        if not self.incident_key:
            raise ValueError("Alert.incident_key must not be empty")
        if self.kind not in KINDS:
            raise ValueError(f"Alert.kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Alert.severity {self.severity!r} is not one of {', '.join(SEVERITIES)}"
            )
        if self.status not in STATUSES:
            raise ValueError(f"Alert.status {self.status!r} is not one of {', '.join(STATUSES)}")

    def as_json(self) -> dict[str, Any]:
        """A JSON-safe copy (values JSON cannot hold become strings, so sinks never fail on them)."""
        return json.loads(json.dumps(asdict(self), default=str))

    def summary(self) -> str:
        """One line for logs, chat previews and notification text."""
        title = " ".join(self.title.split())
        return (
            f"[{self.severity.upper()}] {self.status.upper()} {self.kind} "
            f"{self.incident_key}: {title}"
        )


@runtime_checkable
class Notifier(Protocol):
    """Delivers an alert or raises (preferably ``NotificationError``); never swallows failures."""

    name: str

    def notify(self, alert: Alert) -> None: ...


def _evidence_pairs(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(k), v if isinstance(v, str) else json.dumps(v, default=str))
        for k, v in evidence.items()
    ]


class JsonlNotifier:
    """The default sink: one JSON line per alert plus one log line.

    Opened in append mode and fsynced per alert, so the local record survives a crash right
    after ``notify`` returns (the incident book marks the alert notified at that point).
    """

    name = "log"

    def __init__(self, path: Path, logger: logging.Logger | None = None) -> None:
        self.path = Path(path)
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def notify(self, alert: Alert) -> None:
        line = json.dumps(alert.as_json(), sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise NotificationError(f"alert log {self.path} is not writable: {exc}") from exc
        level = logging.WARNING if alert.status == OPEN else logging.INFO
        self.logger.log(level, "%s", alert.summary())

    def __repr__(self) -> str:
        return f"JsonlNotifier({str(self.path)!r})"


def _mrkdwn_escape(text: str) -> str:
    # Slack's only required escapes; anything else is shown literally.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebhookNotifier:
    """POSTs a Slack-compatible message (``text`` + one mrkdwn section block).

    Errors name only the host: incoming-webhook URLs carry their secret in the path.
    5xx answers and transport errors are retried (the receiver may be restarting); 4xx are not,
    because resending a payload the receiver rejected cannot succeed.
    """

    name = "webhook"
    BACKOFF: tuple[float, ...] = (0.2, 0.4)
    MAX_SECTION_CHARS = 3000  # Slack rejects longer section text

    def __init__(
        self, url: str, timeout: float = 5.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook URL must be an absolute http(s) URL")
        self.url = url
        self.timeout = timeout
        self.sleep = sleep  # injectable: tests record the backoff instead of waiting it out
        self.host = parts.hostname + (f":{parts.port}" if parts.port else "")

    def payload(self, alert: Alert) -> dict[str, Any]:
        lines = [
            f"*{_mrkdwn_escape(alert.title)}*",
            _mrkdwn_escape(alert.detail),
            f"*Severity:* {alert.severity}  *Status:* {alert.status}  *Kind:* {alert.kind}",
            f"*Incident:* `{_mrkdwn_escape(alert.incident_key)}`  *At:* {alert.occurred_at}",
        ]
        if alert.evidence:
            pairs = ", ".join(f"{k}={v}" for k, v in _evidence_pairs(alert.evidence))
            lines.append(f"*Evidence:* {_mrkdwn_escape(pairs)}")
        if alert.links:
            links = "  ".join(
                f"<{_mrkdwn_escape(url)}|{_mrkdwn_escape(name)}>"
                for name, url in alert.links.items()
            )
            lines.append(f"*Links:* {links}")
        text = "\n".join(line for line in lines if line)
        if len(text) > self.MAX_SECTION_CHARS:
            text = text[: self.MAX_SECTION_CHARS - 3] + "..."
        return {
            "text": alert.summary(),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }

    def notify(self, alert: Alert) -> None:
        payload = self.payload(alert)
        attempts = len(self.BACKOFF) + 1
        last = ""
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for attempt in range(1, attempts + 1):
                try:
                    response = client.post(self.url, json=payload)
                except httpx.TransportError as exc:
                    last = f"transport error {type(exc).__name__}: {self._redact(str(exc))}"
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    raise NotificationError(
                        f"webhook {self.host} failed: {type(exc).__name__}: "
                        f"{self._redact(str(exc))}"
                    ) from exc
                else:
                    status = response.status_code
                    if 200 <= status < 300:
                        return
                    body = " ".join(response.text.split())[:200]
                    last = f"HTTP {status} {body}".rstrip()
                    if status < 500:
                        raise NotificationError(
                            f"webhook {self.host} answered {last} (not retried: client error)"
                        )
                if attempt < attempts:
                    self.sleep(self.BACKOFF[attempt - 1])
        raise NotificationError(f"webhook {self.host} failed after {attempts} attempts: {last}")

    def _redact(self, text: str) -> str:
        return text.replace(self.url, self.host)

    def __repr__(self) -> str:
        return f"WebhookNotifier(host={self.host!r})"


class SmtpNotifier:
    """Sends a plain-text email per alert; resolved alerts are marked ``[RESOLVED]`` in the subject."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        timeout: float = 10.0,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if not recipients:
            raise ValueError("SmtpNotifier needs at least one recipient")
        if username is not None and password is None:
            raise ValueError("SmtpNotifier: a username needs a password")
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.recipients = list(recipients)
        self.timeout = timeout
        self.starttls = starttls
        self.username = username
        self.password = password

    @staticmethod
    def subject(alert: Alert) -> str:
        title = " ".join(alert.title.split())  # header injection / folding safety
        subject = f"[{alert.severity.upper()}] {title}"
        return f"[RESOLVED] {subject}" if alert.status == RESOLVED else subject

    @staticmethod
    def body(alert: Alert) -> str:
        lines = [
            alert.title,
            "",
            alert.detail,
            "",
            f"Incident:    {alert.incident_key}",
            f"Kind:        {alert.kind}",
            f"Severity:    {alert.severity}",
            f"Status:      {alert.status}",
            f"Occurred at: {alert.occurred_at}",
        ]
        if alert.evidence:
            lines += ["", "Evidence:"]
            lines += [f"  {k} = {v}" for k, v in _evidence_pairs(alert.evidence)]
        if alert.links:
            lines += ["", "Links:"]
            lines += [f"  {name}: {url}" for name, url in alert.links.items()]
        return "\n".join(lines) + "\n"

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = self.subject(alert)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(datetime.now(UTC))
        # An explicit domain: make_msgid() would otherwise do a (possibly slow) FQDN lookup.
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or "localhost")
        msg["X-Campaign-Incident"] = alert.incident_key
        msg.set_content(self.body(alert))
        return msg

    def notify(self, alert: Alert) -> None:
        msg = self.message(alert)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg, from_addr=self.sender, to_addrs=self.recipients)
        except OSError as exc:  # smtplib.SMTPException is an OSError
            raise NotificationError(
                f"smtp {self.host}:{self.port} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"SmtpNotifier({self.host!r}, {self.port}, to={self.recipients!r})"


class FanoutNotifier:
    """Delivers to every sink even when one fails, so a dead webhook never hides the log record."""

    def __init__(self, notifiers: Iterable[Notifier]) -> None:
        self.notifiers: tuple[Notifier, ...] = tuple(notifiers)
        if not self.notifiers:
            raise ValueError("FanoutNotifier needs at least one notifier")
        self.name = "fanout(" + ",".join(n.name for n in self.notifiers) + ")"

    def notify(self, alert: Alert) -> None:
        failures: list[str] = []
        for notifier in self.notifiers:
            try:
                notifier.notify(alert)
            except Exception as exc:  # every sink gets its chance, whatever one raises
                failures.append(f"{notifier.name}: {exc}")
        if failures:
            raise NotificationError(
                f"{len(failures)} of {len(self.notifiers)} notifiers failed for "
                f"{alert.incident_key}: " + "; ".join(failures)
            )

    def __repr__(self) -> str:
        return f"FanoutNotifier({list(self.notifiers)!r})"


def _required(env: Mapping[str, str], var: str, what: str) -> str:
    value = (env.get(var) or "").strip()
    if not value:
        raise ValueError(f"{var} is not set; set it to {what}")
    return value


def notifier_from_env(env: Mapping[str, str], default_path: Path) -> Notifier:
    """Build the configured notifier; the JSONL log is always included as the local record.

    ``CAMPAIGN_ALERT_NOTIFIERS`` is a comma list of ``log``, ``webhook``, ``smtp`` (default
    ``log``). Settings are checked here, at start-up, so a typo fails loudly instead of at the
    first incident.
    """
    raw = env.get("CAMPAIGN_ALERT_NOTIFIERS") or "log"
    names = list(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in NOTIFIER_NAMES]
    if unknown:
        raise ValueError(
            f"CAMPAIGN_ALERT_NOTIFIERS names unknown notifier(s) {', '.join(unknown)}; "
            f"set it to a comma list of {', '.join(NOTIFIER_NAMES)}"
        )

    log_path = (env.get("CAMPAIGN_ALERT_LOG") or "").strip()
    notifiers: list[Notifier] = [JsonlNotifier(Path(log_path) if log_path else Path(default_path))]

    if "webhook" in names:
        url = _required(
            env,
            "CAMPAIGN_ALERT_WEBHOOK_URL",
            "the incoming-webhook URL (https://...) when CAMPAIGN_ALERT_NOTIFIERS includes webhook",
        )
        try:
            notifiers.append(WebhookNotifier(url))
        except ValueError as exc:
            raise ValueError(
                "CAMPAIGN_ALERT_WEBHOOK_URL is not a valid URL; set it to an absolute "
                "http(s) URL such as https://hooks.slack.com/services/..."
            ) from exc

    if "smtp" in names:
        need = "when CAMPAIGN_ALERT_NOTIFIERS includes smtp"
        host = _required(env, "CAMPAIGN_ALERT_SMTP_HOST", f"the SMTP server host name {need}")
        port_text = (env.get("CAMPAIGN_ALERT_SMTP_PORT") or "25").strip()
        try:
            port = int(port_text)
        except ValueError:
            port = -1
        if not 0 < port < 65536:
            raise ValueError(
                f"CAMPAIGN_ALERT_SMTP_PORT is {port_text!r}; set it to a port number "
                "between 1 and 65535 (default 25)"
            )
        sender = _required(env, "CAMPAIGN_ALERT_SMTP_FROM", f"the sender address {need}")
        to_text = _required(
            env, "CAMPAIGN_ALERT_SMTP_TO", f"a comma list of recipient addresses {need}"
        )
        recipients = [r.strip() for r in to_text.split(",") if r.strip()]
        if not recipients:
            raise ValueError(
                f"CAMPAIGN_ALERT_SMTP_TO has no addresses; set it to a comma list of "
                f"recipient addresses {need}"
            )
        starttls_text = (env.get("CAMPAIGN_ALERT_SMTP_STARTTLS") or "false").strip().lower()
        if starttls_text not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(
                f"CAMPAIGN_ALERT_SMTP_STARTTLS is {starttls_text!r}; set it to true or false"
            )
        username = (env.get("CAMPAIGN_ALERT_SMTP_USERNAME") or "").strip() or None
        password = env.get("CAMPAIGN_ALERT_SMTP_PASSWORD") or None
        if username and password is None:
            raise ValueError(
                "CAMPAIGN_ALERT_SMTP_PASSWORD is not set; set it to the password for "
                "CAMPAIGN_ALERT_SMTP_USERNAME (or unset the username)"
            )
        notifiers.append(
            SmtpNotifier(
                host,
                port,
                sender,
                recipients,
                starttls=starttls_text in ("1", "true", "yes"),
                username=username,
                password=password,
            )
        )

    return notifiers[0] if len(notifiers) == 1 else FanoutNotifier(notifiers)
