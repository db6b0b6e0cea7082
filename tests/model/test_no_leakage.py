"""Point-in-time correctness of the training set: a feature value dated after an exposure never
reaches that exposure's training row (real Feast, offline store over Parquet, temp data dir).

The declared customer attributes are features like the others (``feat_customer_attributes``):
a snapshot dated after the exposure must not reach its row either. How an attribute row's
``valid_from`` becomes a snapshot (strictly before it) is dbt's unit test
``test_feat_customer_attributes_is_point_in_time_correct``; the own-data end-to-end test checks
the whole path from a raw attribute row to the training row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.core.model.training import training_entities
from orchestration.settings import Settings

EXPOSED_AT = pd.Timestamp("2026-03-10T10:00:00Z")
BEFORE = pd.Timestamp("2026-03-10T00:00:00Z")  # the snapshot the exposure may see
AFTER = pd.Timestamp("2026-03-10T10:00:01Z")  # one second after the exposure: must not leak
NEXT_DAY = pd.Timestamp("2026-03-11T00:00:00Z")

RFM = {
    "days_since_last_order": "float64",
    "count_orders_30d": "int64",
    "count_orders_90d": "int64",
    "count_orders_365d": "int64",
    "count_orders_mens_365d": "int64",
    "count_orders_womens_365d": "int64",
    "count_orders_web_365d": "int64",
    "count_orders_phone_365d": "int64",
    "sum_amount_90d": "float64",
    "sum_amount_365d": "float64",
    "avg_order_amount_365d": "float64",
    "tenure_days": "int64",
}
ENGAGEMENT = {
    "count_opens_30d": "int64",
    "count_clicks_30d": "int64",
    "count_dismisses_30d": "int64",
    "count_sessions_30d": "int64",
    "count_opens_90d": "int64",
    "count_clicks_90d": "int64",
    "count_dismisses_90d": "int64",
    "click_through_rate_90d": "float64",
    "days_since_last_engagement": "float64",
}
CONSENT = {
    "is_email_opted_in": "int64",
    "is_sms_opted_in": "int64",
    "is_push_opted_in": "int64",
    "count_channels_opted_in": "int64",
}
# The declared attributes of config/attributes.yaml as features: plan and loyalty_tier one-hot;
# age_band is sensitive, so audited and never a feature.
ATTRIBUTES = {
    "attr_plan__basic": "int64",
    "attr_plan__plus": "int64",
    "attr_plan__premium": "int64",
    "attr_loyalty_tier__bronze": "int64",
    "attr_loyalty_tier__silver": "int64",
    "attr_loyalty_tier__gold": "int64",
}


def _table(rows: list[tuple[int, pd.Timestamp, int]], columns: dict[str, str]) -> pd.DataFrame:
    """Feature rows whose every value is the row's marker (so the origin of a value is known)."""
    frame = pd.DataFrame(
        {
            "customer_id": np.array([r[0] for r in rows], dtype="int64"),
            "event_timestamp": pd.to_datetime([r[1] for r in rows], utc=True),
        }
    )
    for name, dtype in columns.items():
        frame[name] = np.array([r[2] for r in rows]).astype(dtype)
    return frame


def test_a_feature_dated_after_the_exposure_never_reaches_its_training_row(data_dir):
    from orchestration.core.features.feast_store import (
        FEATURE_SERVICE,
        apply_feature_definitions,
        feature_names,
        historical_features,
    )

    settings = Settings.from_env()
    assert settings.data_dir == data_dir.resolve()
    # customer 1: known value 1 before the exposure, 99 one second after it, 7 the next day;
    # customer 2 is exposed the next day and must see the newest value dated before it.
    rows = [(1, BEFORE, 1), (1, AFTER, 99), (1, NEXT_DAY, 7), (2, BEFORE, 3), (2, AFTER, 4)]
    published = settings.features_dir / "current"
    published.mkdir(parents=True)
    for table, columns in (
        ("feat_customer_rfm", RFM),
        ("feat_customer_engagement", ENGAGEMENT),
        ("feat_customer_consent", CONSENT),
        ("feat_customer_attributes", ATTRIBUTES),
    ):
        _table(rows, columns).to_parquet(published / f"{table}.parquet", index=False)
    apply_feature_definitions(settings)

    exposures = pd.DataFrame(
        {
            "exposure_id": ["e1", "e2"],
            "campaign_id": "past_campaign",
            "customer_id": np.array([1, 2], dtype="int64"),
            "channel": "email",
            "is_treated": [1, 0],
            "exposed_at": [EXPOSED_AT, EXPOSED_AT + pd.Timedelta(hours=20)],
            "has_converted": [True, False],
            "is_outcome_complete": True,
        }
    )
    entities = training_entities(exposures, "has_converted")
    frame = historical_features(settings, entities, FEATURE_SERVICE).set_index("exposure_id")
    features = feature_names(settings, FEATURE_SERVICE)
    assert set(features) == set(RFM) | set(ENGAGEMENT) | set(CONSENT) | set(ATTRIBUTES)

    first = frame.loc["e1", features].astype(float)
    assert (first == 1).all(), first[first != 1]  # the value known before the exposure ...
    assert not (first == 99).any()  # ... never the one dated after it
    assert not (first == 7).any()
    second = frame.loc["e2", features].astype(float)
    assert (second == 4).all(), second[second != 4]  # later exposure: newest earlier value
    assert frame.loc["e1", "label"] == 1 and frame.loc["e2", "label"] == 0

    # a join a row at a time (how 10M customers are retrieved: in chunks) gives the same rows
    chunked = historical_features(settings, entities, FEATURE_SERVICE, chunk_rows=1)
    pd.testing.assert_frame_equal(
        chunked.set_index("exposure_id").sort_index()[frame.columns], frame.sort_index()
    )
