"""The decision API over a small, fully controlled state: a raw world of 60 customers, the
repository's policy, campaign files in a temporary directory, fake online features and a fake
model (no Feast, no MLflow), and a standing release that matches them. A test moves one piece
(a model version, the release, a feature timestamp) and forces a refresh."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    # Starlette asks for httpx2 in its TestClient; httpx is what this project declares
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from orchestration.api.app import create_app
from orchestration.api.tokens import TokenStore
from orchestration.core.decisioning.campaigns import load_campaigns
from orchestration.core.decisioning.policy import load_policy
from orchestration.core.decisioning.realtime import (
    CustomerRecords,
    DecisionService,
    Scorer,
    ServingState,
    StandingRelease,
    canary_shares,
)
from orchestration.core.delivery.releases import file_hashes
from orchestration.settings import Settings

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CAMPAIGN = "email_offer"
FEATURE_VERSION = "20260302T000000Z-abc123"
N_CUSTOMERS = 60
CAMPAIGN_YAML = """
name: {name}
channel: email
model: {{name: uplift_model, alias: champion}}
eligibility: {{min_tenure_days: 30}}
max_sends: 1000
budget: {{cost_per_send: 0.002, value_per_conversion: 45.0}}
holdout_share: 0.1
challenger_share: {challenger_share}
priority: 10
enabled: {enabled}
"""


def write_campaign(directory: Path, name: str, challenger_share: float = 0.0, enabled=True):
    directory.mkdir(parents=True, exist_ok=True)
    text = CAMPAIGN_YAML.format(
        name=name, challenger_share=challenger_share, enabled=str(enabled).lower()
    )
    (directory / f"{name}.yaml").write_text(text)


def write_raw_world(raw: Path) -> None:
    """Customers 1..60, signed up a year ago, opted in and reachable on email. Customer 7 opted
    out an hour ago, customer 8 is suppressed on every channel, customer 9 has no verified
    contact point, customer 60 signs up tomorrow."""
    raw.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1, N_CUSTOMERS + 1)
    signed_up = [NOW - timedelta(days=365)] * (N_CUSTOMERS - 1) + [NOW + timedelta(days=1)]
    pd.DataFrame(
        {
            "customer_id": ids,
            "signed_up_at": pd.to_datetime(signed_up, utc=True),
            "region": "north",
            "time_zone": "Europe/Berlin",
            "updated_at": pd.Timestamp(NOW - timedelta(days=1)),
        }
    ).to_parquet(raw / "customers.parquet")
    consent = pd.DataFrame(
        {
            "consent_event_id": ids,
            "customer_id": ids,
            "channel": "email",
            "is_opted_in": True,
            "source": "signup",
            "consented_at": pd.Timestamp(NOW - timedelta(days=365)),
        }
    )
    opt_out = pd.DataFrame(
        {
            "consent_event_id": [1000],
            "customer_id": [7],
            "channel": ["email"],
            "is_opted_in": [False],
            "source": ["preference_center"],
            "consented_at": [pd.Timestamp(NOW - timedelta(hours=1))],
        }
    )
    pd.concat([consent, opt_out], ignore_index=True).to_parquet(raw / "consent_events.parquet")
    pd.DataFrame(
        {
            "suppression_id": pd.Series([1], dtype="int64"),
            "customer_id": pd.Series([8], dtype="int64"),
            "channel": pd.Series([None], dtype="string"),
            "reason": pd.Series(["complaint"], dtype="string"),
            "suppressed_at": pd.Series([pd.Timestamp(NOW - timedelta(days=3))]),
        }
    ).to_parquet(raw / "suppressions.parquet")
    pd.DataFrame(
        {
            "customer_id": ids,
            "channel": "email",
            "address": [f"u{i}@example.com" for i in ids],
            "is_verified": ids != 9,
            "updated_at": pd.Timestamp(NOW - timedelta(days=1)),
        }
    ).to_parquet(raw / "contact_points.parquet")


def uplift_of(customer_ids) -> np.ndarray:
    """The fake model: a positive uplift growing with the id (0.01 .. 0.07)."""
    return 0.01 + np.asarray(customer_ids, dtype=float) / 1000.0


class FakeFeatures:
    """Online features: one column (the id); a timestamp per customer (default 1 h old)."""

    columns = ["feature_a"]

    def __init__(self):
        self.stamps: dict[int, datetime | None] = {}
        self.default_age = timedelta(hours=1)

    def read(self, customer_ids):
        ids = np.asarray(list(customer_ids), dtype=np.int64)
        stamps = [self.stamps.get(int(c), NOW - self.default_age) for c in ids]
        return pd.DataFrame(
            {
                "customer_id": ids,
                "feature_a": ids.astype(float),
                "feature_timestamp": pd.to_datetime(stamps, utc=True),
            }
        )


@dataclass
class FakeLoader:
    """The state the tests control. ``bump()`` changes the signature, so a refresh reloads."""

    settings: Settings
    features: FakeFeatures = field(default_factory=FakeFeatures)
    versions: dict[str, str] = field(default_factory=lambda: {"champion": "3"})
    release_models: frozenset[str] = frozenset({"3"})
    release_policy: str | None = None  # None: the loaded policy's version
    release_features: str = FEATURE_VERSION
    has_release: bool = True
    generation: int = 0

    def bump(self) -> None:
        self.generation += 1

    def signature(self) -> dict:
        return {"generation": self.generation}

    def _scorers(self) -> dict[str, Scorer]:
        def predict(offset: float):
            return lambda x: uplift_of(x["feature_a"].to_numpy()) + offset

        return {
            f"uplift_model@{alias}": Scorer(
                "uplift_model", alias, version, predict(0.0 if alias == "champion" else 0.001)
            )
            for alias, version in self.versions.items()
        }

    def load(self, previous, signature) -> ServingState:
        s = self.settings
        loaded = load_campaigns(s.campaigns_dir)
        policy = load_policy(s.policy_file)
        hashes = {n: file_hashes([p]) for n, p in loaded.sources.items()}
        all_files = {k: v for h in hashes.values() for k, v in h.items()}
        release = StandingRelease(
            run_id="run-released-1",
            released_at=NOW.isoformat(),
            send_date=NOW.date().isoformat(),
            model_versions=self.release_models,
            policy_version=self.release_policy or policy.version,
            feature_version=self.release_features,
            campaign_files=all_files,
        )
        scorers = self._scorers()
        challengers = {sc.name: sc.version for sc in scorers.values() if sc.alias == "challenger"}
        return ServingState(
            loaded_at=datetime.now(UTC),
            signature=signature,
            campaigns=dict(loaded.campaigns),
            campaign_hashes=hashes,
            policy=policy,
            scorers=scorers,
            features=self.features,
            feature_version=FEATURE_VERSION,
            release=release if self.has_release else None,
            cutoffs={name: None for name in loaded.campaigns},
            customers=CustomerRecords.load(s.raw_dir),
            canary_shares=canary_shares(s, loaded.campaigns.values(), challengers),
        )


@pytest.fixture
def api_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    campaigns = data_dir / "campaigns"
    write_campaign(campaigns, CAMPAIGN)
    write_raw_world(data_dir / "raw")
    monkeypatch.setenv("CAMPAIGN_CAMPAIGNS_DIR", str(campaigns))
    monkeypatch.setenv("CAMPAIGN_WORLD_NOW", NOW.isoformat())
    return Settings.from_env()


@pytest.fixture
def loader(api_settings: Settings) -> FakeLoader:
    return FakeLoader(api_settings)


@pytest.fixture
def service(api_settings: Settings, loader: FakeLoader):
    svc = DecisionService(api_settings, loader=loader, refresh_seconds=3600)
    yield svc
    svc.close()


@pytest.fixture
def tokens(api_settings: Settings) -> TokenStore:
    return TokenStore(api_settings.data_dir / "api" / "tokens.json")


@pytest.fixture
def decide_token(tokens: TokenStore) -> str:
    return tokens.create(["decide"], "client")[1]


def make_client(settings, service, tokens, **options) -> TestClient:
    app = create_app(settings, service=service, tokens=tokens, refresh_seconds=3600, **options)
    return TestClient(app)


@pytest.fixture
def client(api_settings, service, tokens):
    with make_client(api_settings, service, tokens) as http:
        yield http


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body(request_id: str, customer_id: int, campaign: str = CAMPAIGN) -> dict:
    return {"request_id": request_id, "customer_id": customer_id, "campaign": campaign}


# --- online features from a real Feast store (the embedded SQLite file or Redis) -----------------

FEAST_VIEW = "api_features"
FEAST_SERVICE = "api_features_v1"


def _feast_definitions(source_path: Path):
    from feast import Entity, FeatureService, FeatureView, Field, FileSource
    from feast.data_format import ParquetFormat
    from feast.types import Float64
    from feast.value_type import ValueType

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="api_features_source",
        path=str(source_path),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
    )
    view = FeatureView(
        name=FEAST_VIEW,
        entities=[customer],
        ttl=timedelta(days=30),
        schema=[Field(name="feature_a", dtype=Float64)],
        source=source,
        online=True,
    )
    return [customer, view, FeatureService(name=FEAST_SERVICE, features=[view])]


def _materialized_reader(settings: Settings, stamps: dict[int, datetime | None]):
    """Customers 1..60 (feature_a = the id) at their stamp (default 1 h old; None: no row),
    materialized as the pipeline does (``open_feature_store``: the store the settings select,
    the project's batch engine); the API's own reader of it."""
    from orchestration.core.decisioning.realtime import feature_reader
    from orchestration.core.features.feast_store import open_feature_store

    rows = {c: stamps.get(c, NOW - timedelta(hours=1)) for c in range(1, N_CUSTOMERS + 1)}
    rows = {c: at for c, at in rows.items() if at is not None}
    path = settings.data_dir / "feast_source" / "api_features.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "customer_id": np.array(list(rows), dtype=np.int64),
            "feature_a": np.array(list(rows), dtype=float),
            "event_timestamp": pd.to_datetime(list(rows.values()), utc=True).astype(
                "datetime64[us, UTC]"
            ),  # DuckDB cannot cast nanosecond time zone stamps
        }
    ).to_parquet(path)
    store = open_feature_store(settings)
    store.apply(_feast_definitions(path))
    times = list(rows.values())
    store.materialize(min(times) - timedelta(seconds=1), max(times) + timedelta(seconds=1))
    return feature_reader(store, FEAST_SERVICE)


@pytest.fixture(params=["fake", "sqlite", "redis"])
def online_features(request, api_settings: Settings, loader: FakeLoader, service, monkeypatch):
    """``use(stamps)`` puts the serving state's online features in place: the fake, or a Feast
    store on the embedded SQLite file or on a real redis-server (CAMPAIGN_ONLINE_STORE), the
    customers at ``stamps`` (default 1 h old; None: missing)."""
    kind = request.param
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        monkeypatch.setenv("CAMPAIGN_ONLINE_STORE", "redis")
        monkeypatch.setenv("CAMPAIGN_REDIS_URL", server.url(server.fresh_db()))

    def use(stamps: dict[int, datetime | None] | None = None) -> str:
        if kind == "fake":
            loader.features.stamps.update(stamps or {})
        else:
            loader.features = _materialized_reader(Settings.from_env(), stamps or {})
            loader.bump()
            service.refresh(force=True)
        return kind

    return use
