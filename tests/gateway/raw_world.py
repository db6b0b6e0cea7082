"""A small raw world for gateway tests: contact points, consents and suppressions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def write_raw(raw: Path, n_customers: int, unverified: tuple[int, ...] = ()) -> Path:
    """Customers 1..n reachable and opted in on email (except ``unverified``)."""
    raw.mkdir(parents=True, exist_ok=True)
    ids = list(range(1, n_customers + 1))
    pd.DataFrame(
        {
            "customer_id": ids,
            "channel": "email",
            "address": [f"u{i}@example.com" for i in ids],
            "is_verified": [i not in unverified for i in ids],
            "updated_at": T0,
        }
    ).to_parquet(raw / "contact_points.parquet")
    pd.DataFrame(
        {
            "consent_event_id": ids,
            "customer_id": ids,
            "channel": "email",
            "is_opted_in": True,
            "source": "signup",
            "consented_at": T0,
        }
    ).to_parquet(raw / "consent_events.parquet")
    pd.DataFrame(
        {
            "suppression_id": pd.Series([], dtype="int64"),
            "customer_id": pd.Series([], dtype="int64"),
            "channel": pd.Series([], dtype="string"),
            "reason": pd.Series([], dtype="string"),
            "suppressed_at": pd.Series([], dtype="datetime64[us, UTC]"),
        }
    ).to_parquet(raw / "suppressions.parquet")
    return raw


def recipients(ids, campaign: str = "c1", channel: str = "email") -> pd.DataFrame:
    return pd.DataFrame({"campaign": campaign, "customer_id": list(ids), "channel": channel})
