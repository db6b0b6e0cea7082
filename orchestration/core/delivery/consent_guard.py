"""Consent and suppression as of dispatch time: an opt-out that lands after the decision wins.

The decision was taken on the warehouse's view of consent; the gateway asks the raw consent
events and suppression list again right before each batch goes out. The state is reloaded when
those files change, so a long dispatch sees an opt-out that arrives while it runs.

Those files may have changed since the run validated them (a team re-exports them between the
daily run and the hourly dispatch), so the guard reads them the way validation accepts them, and
every doubt goes to the customer:

- channels are normalized (trimmed, lower case): an opt-out on ``"EMAIL "`` is an opt-out on
  ``email``; an opt-out or a suppression with no channel (null or blank) holds on every channel;
- an opt-out or a suppression counts whatever its timestamp: a row in the file has happened,
  and one stamped in the future (clock skew, a time-zone slip of the export) must not wait for
  its stamp. An opt-in counts once it is at most ``FUTURE_TOLERANCE`` (the validator's clock-skew
  tolerance, 5 minutes) in the future;
- an opt-in lifts an opt-out only when it is stamped more than ``FUTURE_TOLERANCE`` after it: two
  stamps that close may be in either order, and skew never lets an opt-in beat an opt-out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from orchestration.core.world.contract import CHANNELS, raw_path
from orchestration.core.world.validation import FUTURE_TOLERANCE

NOT_OPTED_IN = "consent_withdrawn_before_dispatch"
SUPPRESSED = "suppressed_before_dispatch"

# The channel as validation accepts it; null when missing or blank (every channel).
_CHANNEL = "nullif(lower(trim(cast(channel as varchar))), '')"
_CHANNEL_LIST = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"


def _stamp(path: Path) -> tuple[int, int, int]:
    status = os.stat(path)
    return (status.st_mtime_ns, status.st_size, status.st_ino)


class ConsentGuard:
    def __init__(self, raw_dir: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.consents = raw_path(raw_dir, "consent_events")
        self.suppressions = raw_path(raw_dir, "suppressions")
        self.clock = clock
        self._stamp: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None
        self._opted_in: pd.DataFrame | None = None
        self._suppressed: pd.DataFrame | None = None

    def _load(self) -> None:
        stamp = (_stamp(self.consents), _stamp(self.suppressions))
        if stamp == self._stamp:
            return
        import duckdb

        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")  # timestamps without a zone are UTC
            params = {
                "latest_opt_in": self.clock() + FUTURE_TOLERANCE,
                "skew": FUTURE_TOLERANCE,
            }
            self._opted_in = con.execute(
                f"""
                with events as (
                    select cast(customer_id as bigint) as customer_id, {_CHANNEL} as channel,
                           is_opted_in, consented_at::timestamptz as stamped_at
                    from read_parquet($path)
                    where customer_id is not null and is_opted_in is not null),
                channels as (select unnest({_CHANNEL_LIST}) as channel),
                opt_outs as (  -- every one counts, whatever its stamp; no channel: every channel
                    select events.customer_id, channels.channel,
                           max(events.stamped_at) as stamped_at
                    from events join channels
                        on events.channel is null or events.channel = channels.channel
                    where not events.is_opted_in
                    group by all),
                opt_ins as (
                    select customer_id, channel, max(stamped_at) as stamped_at
                    from events
                    where is_opted_in and channel is not null and stamped_at <= $latest_opt_in
                    group by all)
                select opt_ins.customer_id, opt_ins.channel
                from opt_ins left join opt_outs using (customer_id, channel)
                where opt_outs.stamped_at is null
                    or opt_ins.stamped_at > opt_outs.stamped_at + $skew
                """,
                {**params, "path": str(self.consents)},
            ).df()
            self._suppressed = con.execute(
                f"select distinct cast(customer_id as bigint) as customer_id,"
                f" {_CHANNEL} as channel from read_parquet($path) where customer_id is not null",
                {"path": str(self.suppressions)},
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
