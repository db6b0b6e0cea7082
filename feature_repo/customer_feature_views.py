"""Feature views over the published dbt feature tables, named ``customer_<topic>``.

Each table has one row per customer per snapshot (midnight UTC of each past campaign day and of
the decision day), computed from events strictly before the snapshot, so a point-in-time join at
an exposure's timestamp returns what was known then.

``customer_sessions_rt`` is different: it is written by ``POST /v1/events`` through a push source,
online only, as the context of triggered campaigns (``trigger.min_sessions_24h``) and of the
event's answer. It is in no feature service: the model's training set stays point-in-time
correct on the batch snapshots alone.
"""

from datetime import timedelta

from customer_entities import customer
from customer_sources import (
    customer_attributes_source,
    customer_consent_source,
    customer_engagement_source,
    customer_rfm_source,
    customer_sessions_push,
)
from feast import FeatureView, Field
from feast.types import Float64, Int64, UnixTimestamp

# A snapshot is taken every decision day; two days of TTL tolerates one missed day and turns
# older snapshots into missing features (which the availability gate counts) instead of silently
# serving stale values offline. Feast does not apply TTL to online reads: we check those ourselves.
SNAPSHOT_TTL = timedelta(days=2)

customer_rfm = FeatureView(
    name="customer_rfm",
    entities=[customer],
    ttl=SNAPSHOT_TTL,
    schema=[
        Field(name="days_since_last_order", dtype=Float64),
        Field(name="count_orders_30d", dtype=Int64),
        Field(name="count_orders_90d", dtype=Int64),
        Field(name="count_orders_365d", dtype=Int64),
        Field(name="count_orders_mens_365d", dtype=Int64),
        Field(name="count_orders_womens_365d", dtype=Int64),
        Field(name="count_orders_web_365d", dtype=Int64),
        Field(name="count_orders_phone_365d", dtype=Int64),
        Field(name="sum_amount_90d", dtype=Float64),
        Field(name="sum_amount_365d", dtype=Float64),
        Field(name="avg_order_amount_365d", dtype=Float64),
        Field(name="tenure_days", dtype=Int64),
    ],
    source=customer_rfm_source,
    online=True,
    description="Recency, frequency and monetary value over 30/90/365 days.",
    tags={"owner": "data-science", "dbt_model": "feat_customer_rfm"},
)

customer_engagement = FeatureView(
    name="customer_engagement",
    entities=[customer],
    ttl=SNAPSHOT_TTL,
    schema=[
        Field(name="count_opens_30d", dtype=Int64),
        Field(name="count_clicks_30d", dtype=Int64),
        Field(name="count_dismisses_30d", dtype=Int64),
        Field(name="count_sessions_30d", dtype=Int64),
        Field(name="count_opens_90d", dtype=Int64),
        Field(name="count_clicks_90d", dtype=Int64),
        Field(name="count_dismisses_90d", dtype=Int64),
        Field(name="click_through_rate_90d", dtype=Float64),
        Field(name="days_since_last_engagement", dtype=Float64),
    ],
    source=customer_engagement_source,
    online=True,
    description="Opens, clicks, dismissals and sessions over 30/90 days.",
    tags={"owner": "data-science", "dbt_model": "feat_customer_engagement"},
)

customer_consent = FeatureView(
    name="customer_consent",
    entities=[customer],
    ttl=SNAPSHOT_TTL,
    schema=[
        Field(name="is_email_opted_in", dtype=Int64),
        Field(name="is_sms_opted_in", dtype=Int64),
        Field(name="is_push_opted_in", dtype=Int64),
        Field(name="count_channels_opted_in", dtype=Int64),
    ],
    source=customer_consent_source,
    online=True,
    description="Consent per channel as of the snapshot (the policy engine re-checks live consent).",
    tags={"owner": "data-science", "dbt_model": "feat_customer_consent"},
)


def _attribute_fields() -> list[Field]:
    """The feature columns of the declared attributes (config/attributes.yaml, or the file
    CAMPAIGN_ATTRIBUTES_FILE names): one-hot categoricals and booleans Int64, numerics Float64."""
    from orchestration.core.world.attributes import load_attributes
    from orchestration.settings import Settings

    declaration = load_attributes(Settings.from_env().attributes_file)
    types = {"float64": Float64, "int64": Int64}
    return [Field(name=c.name, dtype=types[c.dtype]) for c in declaration.feature_columns()]


_ATTRIBUTE_FIELDS = _attribute_fields()
# The declared customer attributes, point in time. No view when nothing (but sensitive
# attributes, which are never features) is declared: Feast would infer a schema from the file.
customer_attributes = (
    FeatureView(
        name="customer_attributes",
        entities=[customer],
        ttl=SNAPSHOT_TTL,
        schema=_ATTRIBUTE_FIELDS,
        source=customer_attributes_source,
        online=True,
        description=(
            "The customer attributes declared in config/attributes.yaml, as of the snapshot "
            "(numbers, 0/1 booleans, one-hot categoricals; null when unknown)."
        ),
        tags={"owner": "data-science", "dbt_model": "feat_customer_attributes"},
    )
    if _ATTRIBUTE_FIELDS
    else None
)

# Pushed on each event; a day old, the 24-hour count means nothing any more.
customer_sessions_rt = FeatureView(
    name="customer_sessions_rt",
    entities=[customer],
    ttl=timedelta(days=1),
    schema=[
        Field(name="last_session_at", dtype=UnixTimestamp),
        Field(name="sessions_24h", dtype=Int64),
    ],
    source=customer_sessions_push,
    online=True,
    description=(
        "Real-time: the customer's latest session_start event and their session_start events in "
        "the 24 hours up to it (pushed by POST /v1/events, as of the event_timestamp)."
    ),
    tags={"owner": "crm", "realtime": "true"},
)
