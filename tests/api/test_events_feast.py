"""The real-time session features through Feast itself: ``POST /v1/events`` pushes them through
the ``customer_sessions_push`` push source (online) and they are read back through Feast; the
model's feature service does not hold them (its training set stays point-in-time correct)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestration.core.decisioning.realtime.event_store import EventStore
from orchestration.core.decisioning.realtime.session_features import FeastSessionFeatures
from orchestration.core.decisioning.realtime.triggers import CustomerEvent, TriggeredCampaigns
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.features.feast_store import (
    FEATURE_SERVICE,
    apply_feature_definitions,
    open_feature_store,
)
from tests.api.conftest import NOW


@pytest.fixture
def feast_settings(api_settings):
    apply_feature_definitions(api_settings)
    return api_settings


def test_events_push_session_features_read_back_through_feast(feast_settings, service):
    features = FeastSessionFeatures(feast_settings)
    triggers = TriggeredCampaigns(
        service,
        EventStore(feast_settings.decisions_dir / "api" / "events.db"),
        features,
        open_ledger=lambda: SendLedger(feast_settings.gateway_dir / "ledger.db"),
        kill_switch=lambda: False,
    )
    try:
        for i, minutes in enumerate((-90, -30)):
            at = (NOW + timedelta(minutes=minutes)).isoformat()
            triggers.handle(CustomerEvent(f"s-{i}", 12, "session_start", at))
        # a session a day and a half ago is outside the 24 hours
        old = (NOW - timedelta(hours=36)).isoformat()
        answer = triggers.handle(CustomerEvent("s-old", 12, "session_start", old))
    finally:
        triggers.close()
    assert answer["realtime_features"]["sessions_24h"] == 2
    assert answer["realtime_features"]["minutes_since_last_session"] == 30.0

    store = open_feature_store(feast_settings)
    online = store.get_online_features(
        features=["customer_sessions_rt:sessions_24h", "customer_sessions_rt:last_session_at"],
        entity_rows=[{"customer_id": 12}, {"customer_id": 13}],
    ).to_dict()
    assert online["sessions_24h"] == [2, None]
    assert online["last_session_at"][0].isoformat() == (NOW - timedelta(minutes=30)).isoformat()

    service_views = {
        p.name for p in store.get_feature_service(FEATURE_SERVICE).feature_view_projections
    }
    assert "customer_sessions_rt" not in service_views
