"""Consent and suppression as of dispatch time: an opt-out that lands after the decision wins.

The decision was taken on the warehouse's view of consent; the gateway asks the raw consent
events and suppression list again right before each batch goes out. The state is reloaded when
those files change, so a long dispatch sees an opt-out that arrives while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from orchestration.core.world.contract import raw_path

NOT_OPTED_IN = "consent_withdrawn_before_dispatch"
SUPPRESSED = "suppressed_before_dispatch"


class ConsentGuard:
    def __init__(self, raw_dir: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.consents = raw_path(raw_dir, "consent_events")
        self.suppressions = raw_path(raw_dir, "suppressions")
        self.clock = clock
        self._stamp: tuple[float, float] | None = None
        self._opted_in: pd.DataFrame | None = None
        self._suppressed: pd.DataFrame | None = None

    def _load(self) -> None:
        stamp = (self.consents.stat().st_mtime, self.suppressions.stat().st_mtime)
        if stamp == self._stamp:
            return
        import duckdb

        con = duckdb.connect()
        try:
            params = {"as_of": self.clock()}
            self._opted_in = con.execute(
                """
                select customer_id, channel from (
                    select customer_id, channel, is_opted_in,
                           row_number() over (partition by customer_id, channel
                               order by consented_at desc, consent_event_id desc) as recency
                    from read_parquet($path)
                    where consented_at::timestamptz <= $as_of::timestamptz)
                where recency = 1 and is_opted_in
                """,
                {**params, "path": str(self.consents)},
            ).df()
            self._suppressed = con.execute(
                "select distinct customer_id, channel from read_parquet($path)"
                " where suppressed_at::timestamptz <= $as_of::timestamptz",
                {**params, "path": str(self.suppressions)},
            ).df()
        finally:
            con.close()
        self._opted_in["ok"] = True
        self._stamp = stamp

    def blocked(self, pairs: pd.DataFrame) -> dict[tuple[int, str], str]:
        """(customer_id, channel) -> reason, for the pairs that may not be contacted now."""
        if pairs.empty:
            return {}
        self._load()
        assert self._opted_in is not None and self._suppressed is not None
        frame = pairs[["customer_id", "channel"]].drop_duplicates()
        merged = frame.merge(self._opted_in, on=["customer_id", "channel"], how="left")
        out = {
            (int(cid), ch): NOT_OPTED_IN
            for cid, ch in merged.loc[merged["ok"].isna(), ["customer_id", "channel"]].itertuples(
                index=False
            )
        }
        if len(self._suppressed):
            everywhere = set(
                self._suppressed.loc[self._suppressed["channel"].isna(), "customer_id"].astype(int)
            )
            per_channel = set(
                self._suppressed.dropna(subset=["channel"])[["customer_id", "channel"]]
                .astype({"customer_id": int})
                .itertuples(index=False, name=None)
            )
            for cid, ch in frame.itertuples(index=False, name=None):
                key = (int(cid), ch)
                if int(cid) in everywhere or key in per_channel:
                    out[key] = SUPPRESSED
        return out
