"""A provider reached over HTTP: JSON batches to a configured URL.

The wire format (what a real ESP/SMS adapter or the test stub implements):

``POST {url}/messages`` with ``Authorization: Bearer <token>`` (token read from an environment
variable, never from a file in the repository), ``Idempotency-Key: <key of the batch>`` and a W3C
``traceparent`` (the trace of the run that enqueued the batch); the body is ``{"messages":
[{"idempotency_key", "campaign", "channel", "to", "template", "recipient_ref", "traceparent"}]}``. Each message carries its own idempotency key, which the provider uses to
deduplicate. The answer is ``{"results": [{"idempotency_key", "status": "accepted" | "duplicate" |
"rejected", "id", "error"}]}``.

``POST {url}/messages/lookup`` with ``{"keys": [...]}`` answers ``{"found": {key: id}}``: which
messages the provider already holds. The gateway asks it before re-sending an uncertain message.

429 and 5xx answers, timeouts and connection errors raise a transient :class:`ProviderError`
(with ``Retry-After`` when the provider sent one); other 4xx answers are permanent.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from orchestration.core.delivery.providers import OutgoingMessage, ProviderError, ProviderResult
from orchestration.core.observability.tracing import traceparent
from orchestration.settings import secret


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _batch_headers(messages: list[OutgoingMessage]) -> dict[str, str]:
    """Idempotency-Key, and the W3C traceparent of the run that enqueued the batch's first
    message (each message also carries its own traceparent in the body)."""
    headers = {"Idempotency-Key": batch_key(messages)}
    traced = next((m.trace_id for m in messages if m.trace_id), None)
    if traced:
        headers["traceparent"] = traceparent(traced)
    return headers


def batch_key(messages: list[OutgoingMessage]) -> str:
    digest = hashlib.sha256("|".join(m.idempotency_key for m in messages).encode())
    return digest.hexdigest()[:32]


class HttpProvider:
    supports_lookup = True

    def __init__(
        self,
        url: str,
        token_env: str | None = None,
        timeout_seconds: float = 10.0,
        name: str = "http",
        client: httpx.Client | None = None,
    ):
        if not url:
            raise ValueError(
                f"provider {name!r}: no URL configured; set `url` in the gateway configuration"
            )
        self.name = name
        self.url = url.rstrip("/")
        self.timeout = timeout_seconds
        headers = {"Content-Type": "application/json"}
        if token_env:
            token = secret(token_env)  # a named secret: the variable the config names
            if not token:
                raise ValueError(
                    f"provider {name!r}: environment variable {token_env} is empty; set it to the"
                    " provider's API token"
                )
            headers["Authorization"] = f"Bearer {token}"
        self._client = client or httpx.Client(headers=headers, timeout=timeout_seconds)

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, payload: dict, headers: dict[str, str] | None = None) -> dict:
        try:
            response = self._client.post(f"{self.url}{path}", json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            # The request may have reached the provider: the outcome is unknown.
            raise ProviderError(
                f"{self.name}: timeout after {self.timeout}s on {path}",
                transient=True,
                uncertain=not isinstance(exc, httpx.ConnectTimeout),
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderError(
                f"{self.name}: {type(exc).__name__} on {path}",
                transient=True,
                uncertain=not isinstance(exc, httpx.ConnectError),
            ) from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise ProviderError(
                f"{self.name}: HTTP {status} on {path}",
                transient=True,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                status=status,
            )
        if status >= 400:
            raise ProviderError(
                f"{self.name}: HTTP {status} on {path}: {response.text[:200]}",
                transient=False,
                status=status,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                f"{self.name}: answer to {path} is not JSON", transient=True, uncertain=True
            ) from exc

    def send_batch(self, messages: list[OutgoingMessage]) -> list[ProviderResult]:
        if not messages:
            return []
        body = self._post(
            "/messages",
            {
                "messages": [
                    {
                        "idempotency_key": m.idempotency_key,
                        "campaign": m.campaign,
                        "channel": m.channel,
                        "to": m.address,
                        "template": m.template,
                        "recipient_ref": m.recipient_ref,
                        **({"traceparent": traceparent(m.trace_id)} if m.trace_id else {}),
                    }
                    for m in messages
                ]
            },
            headers=_batch_headers(messages),
        )
        answered = {r.get("idempotency_key"): r for r in body.get("results", [])}
        results = []
        for m in messages:
            r = answered.get(m.idempotency_key)
            if r is None:
                # Not answered for: unknown, reconciled by lookup on the next attempt.
                raise ProviderError(
                    f"{self.name}: no result for a message of the batch",
                    transient=True,
                    uncertain=True,
                )
            status = r.get("status")
            results.append(
                ProviderResult(
                    idempotency_key=m.idempotency_key,
                    accepted=status in ("accepted", "duplicate"),
                    duplicate=status == "duplicate",
                    provider_message_id=r.get("id"),
                    error=None if status in ("accepted", "duplicate") else str(r.get("error")),
                )
            )
        return results

    def lookup(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        body = self._post("/messages/lookup", {"keys": keys})
        return {str(k): str(v) for k, v in body.get("found", {}).items()}
