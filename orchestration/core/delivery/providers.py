"""What every provider speaks: a batch of messages in, one result per message out.

A provider either answers for each message (accepted, duplicate of a key it already holds, or
rejected for good) or fails the whole call with :class:`ProviderError`. The error says whether a
retry can help (429, 5xx, timeouts, connection errors) and whether the provider may have accepted
the batch before failing (a timeout after the request was sent): such messages are *uncertain*
and are reconciled by idempotency key before anything is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    """One message as the provider sees it. ``address`` exists only inside the gateway."""

    idempotency_key: str
    campaign: str
    customer_id: int
    channel: str
    address: str
    template: str
    # Keyed hash of the customer id: what a provider may store and echo back.
    recipient_ref: str = ""
    # The trace of the run that enqueued it (W3C trace id, 32 hex digits), when known.
    trace_id: str | None = None


@dataclass(frozen=True)
class ProviderResult:
    idempotency_key: str
    accepted: bool
    duplicate: bool = False
    provider_message_id: str | None = None
    error: str | None = None


class ProviderError(Exception):
    """A whole call failed.

    ``transient``: retrying later may succeed (429, 5xx, timeout, connection refused).
    ``uncertain``: the provider may have accepted the batch (e.g. a read timeout after sending).
    ``retry_after``: seconds the provider asked us to wait (``Retry-After``), if it said.
    ``uncertain`` applies to the messages without a result in ``partial``.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        uncertain: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        partial: list[ProviderResult] | None = None,
    ):
        super().__init__(message)
        # Results for the messages answered before the call failed (e.g. SMTP mid-batch).
        self.partial = partial or []
        self.transient = transient
        self.uncertain = uncertain
        self.retry_after = retry_after
        self.status = status


class Provider(Protocol):
    name: str
    # Whether ``lookup`` can tell which idempotency keys the provider already holds.
    supports_lookup: bool

    def send_batch(self, messages: list[OutgoingMessage]) -> list[ProviderResult]: ...

    def lookup(self, keys: list[str]) -> dict[str, str]:
        """idempotency key -> provider message id, for the keys the provider already holds."""
        ...
