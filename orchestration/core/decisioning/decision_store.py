"""The decisions table: one Parquet file per run under ``decided_on=<day>/run=<id>.parquet``.

Answers "why did customer X (not) get campaign Y on day D?" and compares two decision sets
(a dry run against the last live run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

RECIPIENT_DECISIONS = ("send", "deferred")


def run_file(decisions_dir: Path, day: str, run_id: str) -> Path:
    return Path(decisions_dir) / f"decided_on={day}" / f"run={run_id}.parquet"


def write_decisions(frame: pd.DataFrame, decisions_dir: Path, day: str, run_id: str) -> Path:
    path = run_file(decisions_dir, day, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def _query(decisions_dir: Path, sql: str, params: dict) -> pd.DataFrame:
    import duckdb

    files = list(Path(decisions_dir).glob("decided_on=*/run=*.parquet"))
    if not files:
        return pd.DataFrame()
    con = duckdb.connect()
    try:
        glob = str(Path(decisions_dir) / "decided_on=*" / "run=*.parquet")
        return con.execute(
            sql.replace(
                "DECISIONS",
                f"read_parquet('{glob}', hive_partitioning = false, union_by_name = true)",
            ),
            params,
        ).df()
    finally:
        con.close()


def explain(decisions_dir: Path, customer_id: int, campaign: str | None, day: str) -> pd.DataFrame:
    """Every decision about ``customer_id`` on ``day`` (all runs; one campaign or all)."""
    where = "customer_id = $customer and cast(decided_at as date) = cast($day as date)"
    params: dict = {"customer": int(customer_id), "day": day}
    if campaign:
        where += " and campaign = $campaign"
        params["campaign"] = campaign
    return _query(
        decisions_dir,
        f"select * from DECISIONS where {where} order by decided_at, campaign",
        params,
    )


def last_live_decisions(
    decisions_dir: Path, campaign: str, exclude_run: str | None = None
) -> pd.DataFrame:
    """The campaign's decisions from its latest live (not dry-run) run, or an empty frame."""
    params: dict = {"campaign": campaign, "exclude": exclude_run or ""}
    return _query(
        decisions_dir,
        """
        with live as (
            select * from DECISIONS where campaign = $campaign and not dry_run and run_id != $exclude
        ),
        latest as (select run_id from live order by decided_at desc limit 1)
        select * from live where run_id = (select run_id from latest)
        """,
        params,
    )


@dataclass(frozen=True)
class RecipientDiff:
    added: int
    removed: int
    added_by_previous_reason: dict[str, int]
    removed_by_new_reason: dict[str, int]
    previous_run: str | None

    def describe(self) -> str:
        head = f"+{self.added} / -{self.removed} recipients"
        if self.previous_run is None:
            return head + " (no previous live run to compare with)"
        parts = [head + f" vs live run {self.previous_run[:8]}"]
        if self.added_by_previous_reason:
            parts.append(
                "added (previously): "
                + ", ".join(f"{k} {v}" for k, v in self.added_by_previous_reason.items())
            )
        if self.removed_by_new_reason:
            parts.append(
                "removed (now): "
                + ", ".join(f"{k} {v}" for k, v in self.removed_by_new_reason.items())
            )
        return "; ".join(parts)


def diff_recipients(new: pd.DataFrame, previous: pd.DataFrame) -> RecipientDiff:
    """Who would be messaged now and was not before (+), and the reverse (-), by reason."""

    def recipients(frame: pd.DataFrame) -> set[int]:
        if frame.empty:
            return set()
        return set(
            frame.loc[frame["decision"].isin(RECIPIENT_DECISIONS), "customer_id"].astype(int)
        )

    now, before = recipients(new), recipients(previous)
    added, removed = now - before, before - now

    def reasons(frame: pd.DataFrame, ids: set[int]) -> dict[str, int]:
        if frame.empty or not ids:
            return {"not_a_candidate": len(ids)} if ids else {}
        counts = frame.loc[frame["customer_id"].isin(ids), "reason"].value_counts()
        out = {str(k): int(v) for k, v in counts.items() if v}
        missing = len(ids) - sum(out.values())
        if missing:
            out["not_a_candidate"] = missing
        return out

    return RecipientDiff(
        added=len(added),
        removed=len(removed),
        added_by_previous_reason=reasons(previous, added),
        removed_by_new_reason=reasons(new, removed),
        previous_run=None if previous.empty else str(previous["run_id"].iloc[0]),
    )
