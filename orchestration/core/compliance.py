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

from orchestration.core.raw_contract import raw_path


@dataclass(frozen=True)
class ComplianceResult:
    checked: int
    violations: pd.DataFrame  # customer_id, channel, violation

    @property
    def violation_count(self) -> int:
        return len(self.violations)

    @property
    def compliance_rate(self) -> float:
        return 1.0 if self.checked == 0 else 1.0 - self.violation_count / self.checked


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
