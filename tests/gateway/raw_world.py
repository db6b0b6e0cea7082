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


def release(ledger, messages: pd.DataFrame, send_date: str, run_id: str) -> int:
    """Enqueue ``messages`` as a run whose gates all passed would (the release door), for tests
    of what happens after it: dispatch, faults, crashes. Returns how many were new."""
    from orchestration.core.delivery.releases import build_release, gate_verdict

    gates = [("test", "all_gates")]
    record = build_release(
        run_id=run_id,
        released_at=pd.Timestamp.now(tz="UTC").isoformat(),
        send_date=send_date,
        verdict=gate_verdict(gates, [("test", "all_gates", True)]),
        decisions=messages,
        messages=messages,
        feature_version="test",
        campaign_files={},
    )
    return ledger.record_release(record, messages)


def release_and_dispatch(
    gateway, messages: pd.DataFrame, send_date: str, run_id: str, campaigns=None
):
    """A released run's messages, then one dispatch of everything due for those campaigns."""
    newly_due = release(gateway.ledger, messages, send_date, run_id)
    names = sorted(set(campaigns or []) | set(messages["campaign"].unique()))
    report = gateway.dispatch_due(run_id=run_id, campaigns=names)
    report.requested, report.newly_due = len(messages), newly_due
    report.already_in_ledger = len(messages) - newly_due
    return report


def deliver(messages, send_date, run_id, ledger, provider, raw_dir, batch_size=1_000):
    """Release ``messages`` and dispatch them through one provider for every channel."""
    from orchestration.core.delivery.dispatch import Gateway, route_for

    route = route_for(provider, batch_size=batch_size)
    routes = {channel: route for channel in ("email", "sms", "push")}
    return release_and_dispatch(Gateway(ledger, routes, raw_dir), messages, send_date, run_id)
