"""POST /v1/events: triggered campaigns decided on a customer event and their sends handed to the
ledger under the standing release, exactly once per (campaign, customer, channel, day).

The state is the API tests' controlled one (tests/api/conftest.py: fake features and model, the
release ``run-released-1``); the real-time features are an in-memory stand-in here, and go
through Feast in test_events_feast.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pandas as pd
import pytest

from orchestration.api.app import create_app
from orchestration.core.decisioning.realtime import api_decisions
from orchestration.core.decisioning.realtime.event_store import EventStore
from orchestration.core.decisioning.realtime.session_features import SessionFeatures
from orchestration.core.decisioning.realtime.triggers import CustomerEvent, TriggeredCampaigns
from orchestration.core.delivery.dispatch import Gateway, route_for
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.providers import ProviderResult
from tests.api.conftest import CAMPAIGN, NOW, auth, body
from tests.gateway.raw_world import release

TRIGGERED = "cart_email"
CONDITIONED = "engaged_email"
RUN = "run-released-1"  # the FakeLoader's standing release
TRIGGERED_YAML = """
name: {name}
channel: email
max_sends: 1000
budget: {{cost_per_send: 0.002, value_per_conversion: 45.0}}
holdout_share: 0.0
trigger: {trigger}
"""


class MemoryFeatures:
    """The push source and the online read, in memory (Feast itself: test_events_feast.py)."""

    def __init__(self):
        self.rows: dict[int, SessionFeatures] = {}

    def push(self, features: SessionFeatures) -> None:
        self.rows[features.customer_id] = features

    def read(self, customer_id: int) -> SessionFeatures | None:
        return self.rows.get(customer_id)


class RecordingProvider:
    name = "recorder"
    supports_lookup = False

    def __init__(self):
        self.sent = []

    def send_batch(self, messages):
        self.sent.extend(messages)
        return [ProviderResult(m.idempotency_key, True, provider_message_id="p") for m in messages]

    def lookup(self, keys):
        return {}


@pytest.fixture
def triggered_settings(api_settings):
    for name, trigger in (
        (TRIGGERED, "{event: cart_abandoned}"),
        (CONDITIONED, "{event: product_viewed, min_sessions_24h: 2}"),
    ):
        text = TRIGGERED_YAML.format(name=name, trigger=trigger)
        (api_settings.campaigns_dir / f"{name}.yaml").write_text(text)
    return api_settings


@pytest.fixture
def ledger(triggered_settings):
    led = SendLedger(triggered_settings.gateway_dir / "ledger.db")
    empty = pd.DataFrame(columns=["campaign", "customer_id", "channel"])
    release(led, empty, NOW.date().isoformat(), RUN)
    yield led
    led.close()


class Switch:
    on = False

    def __call__(self) -> bool:
        return self.on


@pytest.fixture
def kill_switch():
    return Switch()


def make_triggers(settings, service, kill_switch) -> TriggeredCampaigns:
    return TriggeredCampaigns(
        service,
        EventStore(settings.decisions_dir / "api" / "events.db"),
        MemoryFeatures(),
        open_ledger=lambda: SendLedger(settings.gateway_dir / "ledger.db"),
        kill_switch=kill_switch,
    )


@pytest.fixture
def triggers(triggered_settings, service, ledger, kill_switch):
    handler = make_triggers(triggered_settings, service, kill_switch)
    yield handler
    handler.close()


@pytest.fixture
def http(triggered_settings, service, triggers, tokens):
    from fastapi.testclient import TestClient

    app = create_app(
        triggered_settings, service=service, triggers=triggers, tokens=tokens, refresh_seconds=3600
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture
def events_token(tokens) -> str:
    return tokens.create(["events"], "tracker")[1]


def event(event_id: str, customer_id: int, name: str = "cart_abandoned", **extra) -> dict:
    return {"event_id": event_id, "customer_id": customer_id, "event": name, **extra}


def ledger_rows(ledger: SendLedger) -> pd.DataFrame:
    return ledger.frame()


def sendable_customer(service) -> int:
    """A customer the engine sends the triggered campaign to (not in the global control)."""
    evaluated = service.evaluate(range(10, 50), triggered=[TRIGGERED])
    rows = evaluated.rows
    return int(rows.loc[rows["decision"] == "send", "customer_id"].iloc[0])


def post(http, token, payload):
    return http.post("/v1/events", json=payload, headers=auth(token))


def test_an_event_enqueues_one_send_and_a_replay_enqueues_nothing(
    http, events_token, service, ledger
):
    customer = sendable_customer(service)
    first = post(http, events_token, event("e-1", customer))
    assert first.status_code == 200, first.text
    answer = first.json()
    [decided] = answer["campaigns"]
    assert (decided["campaign"], decided["decision"], decided["enqueued"]) == (
        TRIGGERED,
        "send",
        True,
    )
    assert decided["release"] == RUN and answer["enqueued"] == 1
    replay = post(http, events_token, event("e-1", customer)).json()
    assert replay["replayed"] is True
    assert {**replay, "replayed": False} == answer
    rows = ledger_rows(ledger)
    assert len(rows) == 1
    assert rows.iloc[0][["campaign", "customer_id", "run_id", "status"]].tolist() == [
        TRIGGERED,
        customer,
        RUN,
        "due",
    ]


def test_two_events_of_one_day_make_one_ledger_row(http, events_token, service, ledger):
    customer = sendable_customer(service)
    assert post(http, events_token, event("e-1", customer)).json()["enqueued"] == 1
    later = event("e-2", customer, occurred_at=(NOW + timedelta(minutes=1)).isoformat())
    second = post(http, events_token, later).json()["campaigns"][0]
    assert second["enqueued"] is False
    # the first send counts in today's contacts: the engine's daily limit says no second one
    assert second["not_enqueued_because"] in {second["reason"], "already_in_ledger"}
    assert len(ledger_rows(ledger)) == 1


def test_concurrent_duplicates_in_two_workers_make_one_ledger_row(
    triggered_settings, service, loader, ledger, kill_switch
):
    from orchestration.core.decisioning.realtime import DecisionService

    customer = sendable_customer(service)
    other = DecisionService(triggered_settings, loader=loader, refresh_seconds=3600)
    workers = [make_triggers(triggered_settings, s, kill_switch) for s in (service, other)]
    start = threading.Barrier(4)
    answers = []

    def send(handler, event_id):
        start.wait()
        answers.append(handler.handle(CustomerEvent(event_id, customer, "cart_abandoned")))

    threads = [
        threading.Thread(target=send, args=(w, eid))
        for w in workers
        for eid in ("dup", "dup-other")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.close()
    other.close()
    assert len(answers) == 4
    assert sum(a["enqueued"] for a in answers if not a["replayed"]) == 1
    assert len(ledger_rows(ledger)) == 1


def test_no_standing_release_enqueues_nothing_and_nothing_is_delivered(
    http, events_token, service, loader, ledger, triggered_settings
):
    customer = sendable_customer(service)
    ledger.revoke_release(RUN, "test", "gates failed later")
    loader.has_release = False
    loader.bump()
    service.refresh(force=True)
    decided = post(http, events_token, event("e-1", customer)).json()["campaigns"][0]
    assert (decided["decision"], decided["reason"], decided["enqueued"]) == (
        "no_send",
        "not_released",
        False,
    )
    provider = RecordingProvider()
    routes = {"email": route_for(provider)}
    gateway = Gateway(ledger, routes, triggered_settings.raw_dir, clock=lambda: NOW)
    report = gateway.dispatch_due("dispatch", [TRIGGERED, CAMPAIGN])
    assert ledger_rows(ledger).empty
    assert report.delivered == 0 and provider.sent == []


def test_a_release_revoked_after_the_state_loaded_enqueues_nothing(
    http, events_token, service, ledger
):
    customer = sendable_customer(service)
    # the service still holds the release (no refresh yet); the ledger's transaction re-reads it
    ledger.revoke_release(RUN, "operator", "bad model")
    decided = post(http, events_token, event("e-1", customer)).json()["campaigns"][0]
    assert decided["decision"] == "send"
    assert (decided["enqueued"], decided["not_enqueued_because"]) == (
        False,
        "release_not_standing",
    )
    assert ledger_rows(ledger).empty


def test_the_kill_switch_records_the_decision_and_enqueues_nothing(
    http, events_token, service, ledger, kill_switch, triggered_settings
):
    customer = sendable_customer(service)
    kill_switch.on = True
    decided = post(http, events_token, event("e-1", customer)).json()["campaigns"][0]
    assert (decided["enqueued"], decided["not_enqueued_because"]) == (False, "kill_switch")
    assert ledger_rows(ledger).empty
    stored = api_decisions(triggered_settings.decisions_dir, customer, TRIGGERED, None)
    assert stored["trigger_event"].tolist() == ["cart_abandoned"]
    assert stored["decided_via"].tolist() == ["api"]


def test_an_event_no_campaign_listens_to_decides_nothing(
    http, events_token, service, ledger, triggered_settings
):
    customer = sendable_customer(service)
    answer = post(http, events_token, event("e-1", customer, "page_viewed")).json()
    assert answer["campaigns"] == [] and answer["enqueued"] == 0
    assert ledger_rows(ledger).empty
    # the untriggered campaign is not decided on events
    assert api_decisions(triggered_settings.decisions_dir, customer, None, None).empty


def test_the_trigger_condition_on_real_time_sessions(http, events_token, service, ledger):
    customer = sendable_customer(service)
    post(http, events_token, event("s-1", customer, "session_start"))
    once = post(http, events_token, event("v-1", customer, "product_viewed")).json()
    assert once["realtime_features"]["sessions_24h"] == 1
    [decided] = once["campaigns"]
    assert (decided["campaign"], decided["reason"], decided["enqueued"]) == (
        CONDITIONED,
        "trigger_condition_not_met",
        False,
    )
    post(http, events_token, event("s-2", customer, "session_start"))
    twice = post(http, events_token, event("v-2", customer, "product_viewed")).json()
    assert twice["realtime_features"]["sessions_24h"] == 2
    assert twice["realtime_features"]["minutes_since_last_session"] == 0.0
    assert twice["campaigns"][0]["enqueued"] is True


def test_decisions_do_not_decide_a_triggered_campaign(http, decide_token):
    answer = http.post(
        "/v1/decisions", json=body("r-1", 20, TRIGGERED), headers=auth(decide_token)
    ).json()
    assert (answer["decision"], answer["reason"]) == ("no_send", "event_triggered")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"customer_id": 20, "event": "cart_abandoned"}, "event_id"),
        ({"event_id": "x", "customer_id": "twenty", "event": "cart_abandoned"}, "customer_id"),
        ({"event_id": "x", "customer_id": -3, "event": "cart_abandoned"}, "customer_id"),
        ({"event_id": "x", "customer_id": 999, "event": "cart_abandoned"}, "customer_id"),
        ({"event_id": "x", "customer_id": 20, "event": "Cart Abandoned"}, "event"),
        ({"event_id": "x", "customer_id": 20, "event": "cart_abandoned", "oops": 1}, "oops"),
        (
            {
                "event_id": "x",
                "customer_id": 20,
                "event": "cart_abandoned",
                "occurred_at": "2030-01-01T00:00:00Z",
            },
            "occurred_at",
        ),
    ],
)
def test_bad_bodies_are_422_naming_the_field(http, events_token, ledger, payload, field):
    response = post(http, events_token, payload)
    assert response.status_code == 422, response.text
    assert any(error["loc"][-1] == field for error in response.json()["detail"])
    assert ledger_rows(ledger).empty


def test_an_event_id_reused_for_another_customer_is_409(http, events_token, service):
    customer = sendable_customer(service)
    assert post(http, events_token, event("e-1", customer)).status_code == 200
    assert post(http, events_token, event("e-1", customer + 1)).status_code == 409


def test_events_need_the_events_scope(http, decide_token):
    assert http.post("/v1/events", json=event("e-1", 20)).status_code == 401
    response = http.post("/v1/events", json=event("e-1", 20), headers=auth(decide_token))
    assert response.status_code == 403
    assert "events" in response.json()["detail"]


def test_event_to_provider_exactly_one_message(
    http, events_token, service, ledger, triggered_settings
):
    customer = sendable_customer(service)
    for event_id in ("e-1", "e-1", "e-2"):
        post(http, events_token, event(event_id, customer))
    provider = RecordingProvider()
    gateway = Gateway(
        ledger, {"email": route_for(provider)}, triggered_settings.raw_dir, clock=lambda: NOW
    )
    first = gateway.dispatch_due("dispatch-1", [TRIGGERED])
    again = gateway.dispatch_due("dispatch-2", [TRIGGERED])
    assert first.delivered == 1 and again.delivered == 0
    assert [(m.campaign, m.channel) for m in provider.sent] == [(TRIGGERED, "email")]
    assert ledger_rows(ledger)["status"].tolist() == ["delivered"]
