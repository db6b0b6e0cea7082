"""Triggered campaigns: a customer event (``POST /v1/events``) decided for every campaign whose
``trigger.event`` it is, by the ``DecisionService`` (the batch's policy engine), and its ``send``
decisions handed to the gateway's ledger through the release door.

For one event, in order:

1. validate it (event name, a known customer, not in the future): ``EventRejected`` names the
   field; a known ``event_id`` returns the first answer (``replayed``) and does nothing else;
2. record it in the event store, recompute the customer's session features from the recorded
   events and push them to Feast (``session_features``), then read them back through Feast;
3. decide each campaign listening to the event: one whose ``trigger.min_sessions_24h`` does not
   hold is ``no_send`` / ``trigger_condition_not_met``; the others are decided together (they
   compete with each other only; the batch's campaigns decided the customer's day already and
   their sends count in the caps through the ledger);
4. enqueue each ``send`` of a live campaign as due in the ledger **under the standing release**
   the decision was made under (``SendLedger.enqueue_under_release`` re-reads the release in the
   same transaction): nothing is enqueued, with the reason, when there is no standing release,
   the campaign's file or a version is not the released one (``not_released``), the release was
   revoked meanwhile (``release_not_standing``), the kill switch is on (``kill_switch``), or the
   campaign is a dry run. The ledger's unique (campaign, customer, channel, day) key makes it
   exactly once, also for two events of the same day or concurrent duplicates in other workers;
5. append every decision to the API's decisions store (``decided_via = "api"``, plus the
   ``trigger_event``) and keep the event's answer.

Delivery is the existing ``Gateway.dispatch_due`` (the ``dispatch_due_messages`` job): it claims
only due rows of standing releases and re-checks consent, suppression and the kill switch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from orchestration.core.decisioning.campaigns import EVENT_NAME_PATTERN, Campaign
from orchestration.core.decisioning.realtime.event_store import EventStore, event_digest
from orchestration.core.decisioning.realtime.service import DecisionRequest, DecisionService
from orchestration.core.decisioning.realtime.serving_state import ServingState
from orchestration.core.decisioning.realtime.session_features import (
    SESSION_EVENT,
    RealtimeFeatures,
    SessionFeatures,
)
from orchestration.core.decisioning.realtime.timestamps import utc
from orchestration.core.delivery.ledger import SendLedger

SEND = "send"
# Why a decision put nothing in the ledger (besides its own reason when it is not a send).
KILL_SWITCH = "kill_switch"
RELEASE_NOT_STANDING = "release_not_standing"
ALREADY_IN_LEDGER = "already_in_ledger"
DRY_RUN = "dry_run"
# An event stamped this far ahead of the service's clock is refused (clock skew is tolerated).
FUTURE_TOLERANCE = timedelta(minutes=5)


class EventRejected(ValueError):
    """A client error in the event: ``field`` names the body field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class EventIdReused(ValueError):
    """The event id was used before for another customer, event or time."""


@dataclass(frozen=True)
class CustomerEvent:
    event_id: str
    customer_id: int
    event: str
    occurred_at: datetime | None = None
    received: datetime | None = field(default=None, compare=False)


class TriggeredCampaigns:
    """Decides events for the triggered campaigns and enqueues their sends (see the module doc).

    ``open_ledger`` opens the gateway's ``SendLedger`` (at the first send: an API that only
    decides creates no ledger); ``kill_switch`` says whether sends are stopped."""

    def __init__(
        self,
        service: DecisionService,
        events: EventStore,
        features: RealtimeFeatures,
        open_ledger: Callable[[], SendLedger],
        kill_switch: Callable[[], bool],
    ):
        self.service = service
        self.events = events
        self.features = features
        self.open_ledger = open_ledger
        self.kill_switch = kill_switch
        self._ledger: SendLedger | None = None
        self._lock = threading.Lock()

    @property
    def ledger(self) -> SendLedger:
        if self._ledger is None:
            self._ledger = self.open_ledger()
        return self._ledger

    def close(self) -> None:
        self.events.close()
        if self._ledger is not None:
            self._ledger.close()

    # --- validation -------------------------------------------------------------------------

    def validate(self, event: CustomerEvent, state: ServingState, now: datetime) -> datetime:
        """The event's time (now when it gives none), or EventRejected naming the field."""
        if not EVENT_NAME_PATTERN.match(event.event):
            raise EventRejected(
                "event",
                f"event {event.event!r} is not an event name: lower-case letters, digits and"
                " underscores, starting with a letter (e.g. session_start, cart_abandoned)",
            )
        if int(event.customer_id) <= 0:
            raise EventRejected("customer_id", "customer_id must be a positive integer")
        occurred = utc(event.occurred_at or now).to_pydatetime()
        if occurred > now + FUTURE_TOLERANCE:
            raise EventRejected(
                "occurred_at",
                f"occurred_at {occurred.isoformat()} is in the future (now {now.isoformat()});"
                " send the time the event happened, in UTC or with an offset",
            )
        customers = state.customers
        if customers is not None and not customers.known([event.customer_id], now)[0]:
            raise EventRejected(
                "customer_id",
                f"customer_id {event.customer_id} is not a known customer (no raw customer row"
                " signed up by now)",
            )
        return occurred

    # --- handling ---------------------------------------------------------------------------

    def handle(self, event: CustomerEvent) -> dict[str, Any]:
        """The event's answer: the session features and, per triggered campaign, the decision,
        its reason and whether a message was enqueued. Raises EventRejected / EventIdReused."""
        state = self.service.state
        now = utc(self.service.clock()).to_pydatetime()
        occurred = self.validate(event, state, now)
        digest = event_digest(event.customer_id, event.event, occurred)
        with self._lock:
            stored = self.events.get(event.event_id)
            if stored is not None and stored.digest != digest:
                raise EventIdReused(
                    f"event_id {event.event_id!r} was already used for another customer, event or"
                    " occurred_at; use a new event_id for a new event"
                )
            if stored is not None and stored.answer is not None:
                return {**stored.answer, "replayed": True}
            # new, or recorded by a call that stopped before answering: (re)do the rest, which
            # is idempotent (counts from the store, the ledger's unique key, first answer kept)
            self.events.record(event.event_id, event.customer_id, event.event, occurred, now)
            features, feature_error = self._update_features(event.customer_id)
            campaigns = self._decide(state, event, features, feature_error, now)
            answer = {
                "event_id": event.event_id,
                "customer_id": int(event.customer_id),
                "event": event.event,
                "occurred_at": pd.Timestamp(occurred).isoformat(),
                "realtime_features": features.as_answer(now) if features else None,
                "realtime_features_error": feature_error,
                "campaigns": campaigns,
                "enqueued": sum(1 for c in campaigns if c["enqueued"]),
                "replayed": False,
            }
            kept = self.events.answer(event.event_id, answer)
        return kept if kept == answer else {**kept, "replayed": True}

    def _update_features(self, customer_id: int) -> tuple[SessionFeatures | None, str | None]:
        """Recount the customer's sessions from the recorded events, push, and read back."""
        counted = self.events.sessions(customer_id, SESSION_EVENT)
        if counted is None:
            return None, "no recorded event"
        as_of, last_session, count = counted
        try:
            self.features.push(SessionFeatures(int(customer_id), last_session, count, as_of))
            return self.features.read(int(customer_id)), None
        except Exception as exc:  # noqa: BLE001 - reported; conditions on them cannot hold
            return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"

    def _decide(self, state, event, features, feature_error, now) -> list[dict[str, Any]]:
        listening = [
            c
            for c in sorted(state.campaigns.values(), key=lambda c: c.name)
            if c.trigger is not None and c.trigger.event == event.event
        ]
        if not listening:
            return []
        not_fired = {c.name: _not_fired(c, features, feature_error) for c in listening}
        fired = [c.name for c in listening if not_fired[c.name] is None]
        try:
            evaluated = self.service.evaluate(
                [event.customer_id], decided_at=now, state=state, triggered=fired
            )
            error = None
        except Exception as exc:  # noqa: BLE001 - a safe default, never an error page
            evaluated, error = None, f"{type(exc).__name__}: {exc}"[:300]
        answers, rows = [], []
        for campaign in listening:
            request = DecisionRequest(
                f"event:{event.event_id}:{campaign.name}", event.customer_id, campaign.name
            )
            answer, row = self.service.build_answer(
                state,
                request,
                evaluated,
                error,
                event=event.event,
                not_fired=not_fired[campaign.name],
            )
            answer = {
                **answer,
                "trigger_event": event.event,
                **self._enqueue(state, campaign, answer),
            }
            answers.append(answer)
            rows.append({**row, "answer": json.dumps(answer, sort_keys=True)})
        stored = self.service.store.put_many(rows)
        return [stored.get(a["request_id"], a) for a in answers]

    def _enqueue(self, state: ServingState, campaign: Campaign, answer: dict) -> dict[str, Any]:
        """Hand a ``send`` to the ledger under the standing release: {enqueued, why not}."""
        if answer["decision"] != SEND:
            return {"enqueued": False, "not_enqueued_because": answer["reason"]}
        if campaign.dry_run:
            return {"enqueued": False, "not_enqueued_because": DRY_RUN}
        if self.kill_switch():
            return {"enqueued": False, "not_enqueued_because": KILL_SWITCH}
        release = state.release
        if release is None:  # a send is decided only under a standing release; kept as a guard
            return {"enqueued": False, "not_enqueued_because": RELEASE_NOT_STANDING}
        message = pd.DataFrame(
            {
                "campaign": [campaign.name],
                "customer_id": [int(answer["customer_id"])],
                "channel": [answer["channel"]],  # a chosen variant's, else the campaign's
                "template": [answer.get("template")],
            }
        )
        send_date = answer["decided_at"][:10]
        new = self.ledger.enqueue_under_release(release.run_id, message, send_date)
        if new is None:
            return {"enqueued": False, "not_enqueued_because": RELEASE_NOT_STANDING}
        if new == 0:
            return {"enqueued": False, "not_enqueued_because": ALREADY_IN_LEDGER}
        return {"enqueued": True, "not_enqueued_because": None}


def _not_fired(
    campaign: Campaign, features: SessionFeatures | None, feature_error: str | None
) -> str | None:
    """Why the trigger's condition does not hold (None: it holds)."""
    wanted = campaign.trigger.min_sessions_24h if campaign.trigger else None
    if wanted is None:
        return None
    if features is None:
        return f"real-time features unavailable ({feature_error}): min_sessions_24h cannot hold"
    if features.sessions_24h < wanted:
        return f"sessions_24h {features.sessions_24h} is below min_sessions_24h {wanted}"
    return None
