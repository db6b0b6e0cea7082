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
SAFE_REASON_TEXT = {
    NOT_RELEASED: (
        "the model, policy, feature or campaign version is not the one of the latest standing "
        "release: nothing unreleased decides"
    ),
    STALE_FEATURES: "the customer's online features are missing or older than the freshness window",
    UNKNOWN_CUSTOMER: "no customer with this id had signed up by the decision time",
    CAMPAIGN_DISABLED: "the campaign is disabled (enabled: false)",
    UNAVAILABLE: "the decision service could not load part of its state (see /v1/health)",
}
DECIDED_VIA = "api"
API_RUN_ID = "api"


def reason_text(reason: str) -> str:
    return SAFE_REASON_TEXT.get(reason) or REASON_TEXT.get(reason, "")
