"""Gateway configuration, routes, rate limit, pseudonyms and the ledger's schema upgrade."""

from __future__ import annotations

import sqlite3

import pytest

from orchestration.core.delivery.build import build_routes
from orchestration.core.delivery.config import GatewayConfigError, load_gateway_config
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.pseudonyms import recipient_ref
from orchestration.core.delivery.rate_limit import TokenBucket
from orchestration.settings import GATEWAY_CONFIG


def test_the_shipped_configuration_routes_every_channel_to_the_outbox(tmp_path):
    config = load_gateway_config(GATEWAY_CONFIG)
    routes = build_routes(config, tmp_path)
    assert {c: r.provider.name for c, r in routes.items()} == {
        "email": "outbox",
        "sms": "outbox",
        "push": "outbox",
    }
    # one provider object: one rate limit and one breaker shared by its channels
    assert routes["email"].breaker is routes["sms"].breaker


def test_http_route_with_fallback_and_env_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("ESP_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ESP_TOKEN", "secret")
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "providers:\n"
        "  esp: {type: http, url: '${ESP_URL}', token_env: ESP_TOKEN, rate_per_second: 5}\n"
        "  outbox: {type: outbox}\n"
        "channels:\n"
        "  email: {provider: esp, fallback: outbox}\n"
        "  sms: {provider: outbox}\n"
        "  push: {provider: outbox}\n"
    )
    routes = build_routes(load_gateway_config(path), tmp_path)
    assert routes["email"].provider.url == "http://127.0.0.1:9"
    assert routes["email"].fallback.provider.name == "outbox"
    assert routes["email"].bucket.rate == 5


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("providers: {a: {type: carrier_pigeon}}\n", "providers.a"),
        (
            "channels: {email: {provider: nowhere}, sms: {provider: outbox},"
            " push: {provider: outbox}}\n",
            "channels.email.provider names 'nowhere'",
        ),
        ("channels: {email: {provider: outbox}}\n", "have no route"),
        ("retry: {max_attempts: 0}\n", "retry.max_attempts"),
        ("providers: {h: {type: http}}\n", "needs `url`"),
        ("retry: [\n", "not valid YAML"),
    ],
)
def test_a_bad_configuration_names_the_file_and_the_field(tmp_path, text, names):
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(GatewayConfigError) as err:
        load_gateway_config(path)
    assert str(path) in str(err.value) and names in str(err.value)


def test_missing_token_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "providers: {esp: {type: http, url: 'http://127.0.0.1:9', token_env: NO_SUCH_TOKEN}}\n"
        "channels: {email: {provider: esp}, sms: {provider: esp}, push: {provider: esp}}\n"
    )
    with pytest.raises(ValueError, match="NO_SUCH_TOKEN"):
        build_routes(load_gateway_config(path), tmp_path)


def test_token_bucket_spaces_out_a_burst():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate_per_second=50, capacity=50, clock=lambda: now[0], sleep=sleep)
    assert bucket.acquire(50) == 0.0  # the burst fits
    waited = bucket.acquire(100)  # two more seconds' worth
    assert waited == pytest.approx(2.0)
    assert now[0] == pytest.approx(2.0)


def test_recipient_refs_are_keyed_and_stable(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_PSEUDONYM_KEY", "k1")
    first = recipient_ref(42)
    assert first == recipient_ref(42) and first != recipient_ref(43)
    monkeypatch.setenv("CAMPAIGN_PSEUDONYM_KEY", "k2")
    assert recipient_ref(42) != first  # without the key, no join back to the customer
    assert "42" not in first


def test_a_ledger_from_before_deferral_is_upgraded_in_place(tmp_path):
    path = tmp_path / "ledger.db"
    con = sqlite3.connect(path)
    con.execute(
        "create table deliveries (idempotency_key text primary key, campaign text not null,"
        " customer_id integer not null, channel text not null, send_date text not null,"
        " run_id text not null, status text not null check (status in ('due','delivered',"
        "'failed')), provider text, provider_message_id text, attempts integer not null default 0,"
        " last_error text, claimed_by text, claimed_at text, created_at text not null,"
        " updated_at text not null, unique (campaign, customer_id, channel, send_date))"
    )
    con.execute(
        "insert into deliveries values ('k','c',1,'email','2026-11-01','r','delivered','outbox',"
        "'m',1,null,null,null,'t','t')"
    )
    con.commit()
    con.close()
    ledger = SendLedger(path)
    frame = ledger.frame()
    assert frame.loc[0, "status"] == "delivered" and "not_before" in frame.columns
    assert ledger.counts() == {"delivered": 1}
