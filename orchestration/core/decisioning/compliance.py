"""Independent re-verification of an audience against consent and suppression, from raw data.

The audience is built from the warehouse marts; this check reads the raw consent events and
suppression list directly (a second path to the same facts), so a bug in a dbt model or in the
selection code cannot send to an opted-out or suppressed customer unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from orchestration.core.world.contract import raw_path


@dataclass(frozen=True)
class ComplianceResult:
    checked: int
    violations: pd.DataFrame  # customer_id, channel, violation

    @property
    def violation_count(self) -> int:
        return len(self.violations)

    @property
    def compliance_rate(self) -> float:
        """Share of checked rows with no violation (a row breaking two rules counts once)."""
        if self.checked == 0:
            return 1.0
        bad = (
            len(self.violations[["customer_id", "channel"]].drop_duplicates())
            if len(self.violations)
            else 0
        )
        return 1.0 - bad / self.checked


def verify_audience(recipients: pd.DataFrame, raw_dir: Path, as_of: datetime) -> ComplianceResult:
    """Every (customer_id, channel) in ``recipients`` must be opted in and not suppressed at ``as_of``."""
    import duckdb

    if recipients.empty:
        return ComplianceResult(0, pd.DataFrame(columns=["customer_id", "channel", "violation"]))
    con = duckdb.connect()
    try:
        con.register("recipients", recipients[["customer_id", "channel"]].drop_duplicates())
        violations = con.execute(
            """
            with consent as (
                select customer_id, channel, is_opted_in,
                       row_number() over (
                           partition by customer_id, channel
                           order by consented_at desc, consent_event_id desc) as recency
                from read_parquet($consents)
                where consented_at::timestamptz <= $as_of::timestamptz
            ),
            latest_consent as (select * from consent where recency = 1),
            suppressed as (
                select distinct s.customer_id, r.channel
                from read_parquet($suppressions) s
                join recipients r
                  on r.customer_id = s.customer_id
                 and (s.channel is null or s.channel = r.channel)
                where s.suppressed_at::timestamptz <= $as_of::timestamptz
            )
            select r.customer_id, r.channel, 'not_opted_in' as violation
            from recipients r
            left join latest_consent c using (customer_id, channel)
            where not coalesce(c.is_opted_in, false)
            union all
            select customer_id, channel, 'suppressed' as violation from suppressed
            order by customer_id, channel, violation
            """,
            {
                "consents": str(raw_path(raw_dir, "consent_events")),
                "suppressions": str(raw_path(raw_dir, "suppressions")),
                "as_of": pd.Timestamp(as_of).to_pydatetime(),
            },
        ).df()
    finally:
        con.close()
    return ComplianceResult(checked=len(recipients), violations=violations)


def verify_policy(
    recipients: pd.DataFrame,
    raw_dir: Path,
    policy,
    contact_history: pd.DataFrame,
    decided_at: datetime,
) -> ComplianceResult:
    """Re-verify selected rows (campaign, customer_id, channel, decision) against every rule.

    Written independently of the policy engine (plain pandas, raw files): consent and
    suppression from the raw tables, the global control group, frequency caps and the daily
    limit (ledger history plus this run's own selections), and quiet hours for immediate sends
    in the customer's time zone read from the raw customers table.
    """
    from zoneinfo import ZoneInfo

    from orchestration.core.common.hashing import in_share

    base = verify_audience(recipients, raw_dir, decided_at)
    found = [base.violations]
    if recipients.empty:
        return base
    rows = recipients[["campaign", "customer_id", "channel", "decision"]].copy()
    rows["customer_id"] = rows["customer_id"].astype("int64")

    control = in_share(
        rows["customer_id"].to_numpy(), policy.global_control.share, policy.global_control.salt
    )
    found.append(rows.loc[control, ["customer_id", "channel"]].assign(violation="global_control"))

    today = pd.Timestamp(decided_at).tz_convert("UTC").normalize().tz_localize(None)
    history = contact_history.copy()
    if not history.empty:
        history["day"] = pd.to_datetime(history["send_date"])
    planned = rows.assign(day=today)[["customer_id", "channel", "day"]]
    combined = pd.concat(
        [history[["customer_id", "channel", "day"]] if not history.empty else None, planned]
    )
    for cap in policy.frequency_caps:
        window = combined[combined["day"] > today - pd.Timedelta(days=cap.window_days)]
        if cap.scope != "all":
            window = window[window["channel"] == cap.scope]
        over = window.groupby("customer_id").size()
        over = set(over[over > cap.max_messages].index)
        scoped = rows if cap.scope == "all" else rows[rows["channel"] == cap.scope]
        hit = scoped[scoped["customer_id"].isin(over)]
        found.append(
            hit[["customer_id", "channel"]].assign(
                violation=f"frequency_cap_{cap.scope}_{cap.window_days}d"
            )
        )
    per_day = combined[combined["day"] == today].groupby("customer_id").size()
    too_many = set(per_day[per_day > policy.max_messages_per_customer_per_day].index)
    found.append(
        rows.loc[rows["customer_id"].isin(too_many), ["customer_id", "channel"]].assign(
            violation="daily_limit"
        )
    )

    immediate = rows[(rows["decision"] == "send") & rows["channel"].isin(list(policy.quiet_hours))]
    if not immediate.empty:
        zones = pd.read_parquet(
            raw_path(raw_dir, "customers"), columns=["customer_id", "time_zone"]
        )
        immediate = immediate.merge(zones, on="customer_id", how="left")
        now = pd.Timestamp(decided_at).to_pydatetime()
        for (channel, zone), group in immediate.groupby(["channel", "time_zone"], dropna=False):
            start, end = policy.quiet_hours[channel].bounds()
            local = now.astimezone(ZoneInfo(str(zone))) if isinstance(zone, str) else None
            t = None if local is None else local.time()
            # [start, end); start after end runs past midnight (written here, not imported
            # from the engine: this re-check must stay independent of the code it checks)
            allowed = t is not None and (
                start <= t < end if start < end else (t >= start or t < end)
            )
            if not allowed:
                found.append(group[["customer_id", "channel"]].assign(violation="quiet_hours"))
    violations = (
        pd.concat([f for f in found if f is not None and len(f)], ignore_index=True)
        if any(len(f) for f in found)
        else base.violations
    )
    return ComplianceResult(checked=len(rows), violations=violations)
