"""The safe-default reasons a real-time decision answers with, their text, and how the API's
decision rows are labelled (``run_id`` / ``decided_via``)."""

from __future__ import annotations

from orchestration.core.decisioning.engine import (
    REASON_TEXT,
)

NO_SEND = "no_send"
NOT_RELEASED = "not_released"
STALE_FEATURES = "stale_features"
UNKNOWN_CUSTOMER = "unknown_customer"
CAMPAIGN_DISABLED = "campaign_disabled"
UNAVAILABLE = "unavailable"
EVENT_TRIGGERED = "event_triggered"
TRIGGER_NOT_MET = "trigger_condition_not_met"
SAFE_REASON_TEXT = {
    NOT_RELEASED: (
        "the model, policy, feature or campaign version is not the one of the latest standing "
        "release: nothing unreleased decides"
    ),
    STALE_FEATURES: "the customer's online features are missing or older than the freshness window",
    UNKNOWN_CUSTOMER: "no customer with this id had signed up by the decision time",
    CAMPAIGN_DISABLED: "the campaign is disabled (enabled: false)",
    UNAVAILABLE: "the decision service could not load part of its state (see /v1/health)",
    EVENT_TRIGGERED: "the campaign is triggered: it is decided on its event (POST /v1/events) only",
    TRIGGER_NOT_MET: "the event came, but the trigger's condition on the real-time features did not hold",
}
DECIDED_VIA = "api"
API_RUN_ID = "api"


def reason_text(reason: str) -> str:
    return SAFE_REASON_TEXT.get(reason) or REASON_TEXT.get(reason, "")
