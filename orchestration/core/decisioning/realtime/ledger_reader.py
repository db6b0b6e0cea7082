"""The send ledger read for a few customers, its standing release, and that release's send-cap
cut-offs."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from orchestration.core.decisioning.realtime.timestamps import utc


@dataclass(frozen=True)
class StandingRelease:
    """The latest release in the ledger that has not been revoked."""

    run_id: str
    released_at: str
    send_date: str
    model_versions: frozenset[str]
    policy_version: str
    feature_version: str
    campaign_files: dict[str, str]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StandingRelease:
        versions = str(row.get("model_versions") or "")
        return cls(
            run_id=str(row["run_id"]),
            released_at=str(row["released_at"]),
            send_date=str(row["send_date"]),
            model_versions=frozenset(v.strip() for v in versions.split(",") if v.strip()),
            policy_version=str(row["policy_version"]),
            feature_version=str(row["feature_version"]),
            campaign_files=json.loads(row.get("campaign_files") or "{}"),
        )


def standing_release(releases: pd.DataFrame) -> StandingRelease | None:
    """The newest release whose status is ``released`` (``SendLedger.releases()`` rows)."""
    if releases.empty:
        return None
    standing = releases[releases["status"] == "released"]
    if standing.empty:
        return None
    return StandingRelease.from_row(standing.sort_values("released_at").iloc[-1].to_dict())


def send_cutoffs(decisions: pd.DataFrame) -> dict[str, float | None]:
    """Per live campaign of a released run: the lowest expected net value it accepted (selected or
    holdout) when its send cap bound (some rows ``outside_send_cap``), +inf when the cap let
    nobody in, None when it did not bind."""
    out: dict[str, float | None] = {}
    if decisions.empty:
        return out
    live = decisions[~decisions["dry_run"].astype(bool)]
    for campaign, rows in live.groupby("campaign", sort=True):
        if not (rows["reason"] == "outside_send_cap").any():
            out[str(campaign)] = None
            continue
        accepted = rows.loc[rows["value_rank"].notna(), "expected_net_value"]
        out[str(campaign)] = float(accepted.min()) if len(accepted) else math.inf
    return out


def release_cutoffs(
    decisions_dir: Path, release: StandingRelease
) -> dict[str, float | None] | None:
    """The cut-offs of a release's run (its decisions file), or None when the file is missing."""
    from orchestration.core.decisioning.decision_store import run_file

    path = run_file(decisions_dir, release.send_date, release.run_id)
    if not path.exists():
        return None
    return send_cutoffs(pd.read_parquet(path))


# --- the ledger, read per customer ---------------------------------------------------------------


class LedgerReader:
    """Reads the send ledger for a few customers (never writes, never creates it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._con: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # sent_today's answer, kept until another connection commits (pragma data_version)
        self._sent: tuple[str, int, dict[str, int]] | None = None

    def _connection(self) -> sqlite3.Connection | None:
        if self._con is None:
            if not self.path.exists():
                return None
            self._con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._con.execute("pragma busy_timeout=30000")
        return self._con

    def releases(self) -> pd.DataFrame:
        with self._lock:
            con = self._connection()
            if con is None:
                return pd.DataFrame(columns=["run_id", "status", "released_at"])
            return pd.read_sql_query("select * from releases order by released_at", con)

    def contacts(
        self, customer_ids: Sequence[int], decided_at: datetime, days: int
    ) -> pd.DataFrame:
        """Ledger rows (any status) of these customers over the last ``days`` days, today included
        (``inputs.recent_contacts`` for a few customers)."""
        from orchestration.core.decisioning.inputs import HISTORY_COLUMNS

        first = (utc(decided_at).normalize() - pd.Timedelta(days=days - 1)).date().isoformat()
        ids = [int(c) for c in customer_ids]
        with self._lock:
            con = self._connection()
            if con is None or not ids:
                return pd.DataFrame(columns=HISTORY_COLUMNS)
            rows = con.execute(
                f"select {', '.join(HISTORY_COLUMNS)} from deliveries where send_date >= ?"
                f" and customer_id in ({','.join('?' * len(ids))})",
                [first, *ids],
            ).fetchall()
        if not rows:
            return pd.DataFrame(columns=HISTORY_COLUMNS)
        history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        # days as datetimes already: the engine's to_datetime then skips guessing a format
        history["send_date"] = pd.to_datetime(history["send_date"], format="%Y-%m-%d")
        return history

    def sent_today(self, send_date: str) -> dict[str, int]:
        """Ledger rows per campaign on ``send_date``, whatever their status. Counted again only
        when the ledger changed since the last count (``pragma data_version``: a request reads
        one integer instead of counting a day of sends)."""
        with self._lock:
            con = self._connection()
            if con is None:
                return {}
            version = con.execute("pragma data_version").fetchone()[0]
            if self._sent is not None and self._sent[:2] == (send_date, version):
                return dict(self._sent[2])
            rows = con.execute(
                "select campaign, count(*) from deliveries where send_date = ? group by campaign",
                (send_date,),
            ).fetchall()
            counts = {str(c): int(n) for c, n in rows}
            self._sent = (send_date, version, counts)
        return dict(counts)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
                self._sent = None
