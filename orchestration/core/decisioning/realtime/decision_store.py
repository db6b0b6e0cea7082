"""The API's decisions store: one row per request id, in the batch schema plus the API's columns."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from orchestration.settings import Settings

STORE_SCHEMA = """
create table if not exists api_decisions (
    request_id text primary key,
    request_digest text not null,
    run_id text not null,
    campaign text not null,
    channel text,
    customer_id integer not null,
    decision text not null,
    reason text not null,
    predicted_uplift real,
    expected_net_value real,
    value_rank real,
    model_version text,
    scored_by text,
    policy_version text,
    feature_timestamp text,
    decided_at text not null,
    deferred_until text,
    dry_run integer not null,
    decided_via text not null,
    decided_on text not null,
    propensity real,
    feature_version text,
    release_run_id text,
    answer text not null,
    trigger_event text,
    trace_id text,
    features text,
    variant text,
    template text,
    runner_up_value real
);
create index if not exists api_decisions_customer on api_decisions (customer_id, decided_on);
"""
STORE_COLUMNS = (
    "request_id",
    "request_digest",
    "run_id",
    "campaign",
    "channel",
    "customer_id",
    "decision",
    "reason",
    "predicted_uplift",
    "expected_net_value",
    "value_rank",
    "model_version",
    "scored_by",
    "policy_version",
    "feature_timestamp",
    "decided_at",
    "deferred_until",
    "dry_run",
    "decided_via",
    "decided_on",
    "propensity",
    "feature_version",
    "release_run_id",
    "answer",
    "trigger_event",
    "trace_id",
    "features",
    "variant",
    "template",
    "runner_up_value",
)
# columns added after the first stores were written (added to an older store on open)
_ADDED_COLUMNS = {
    "trigger_event": "text",  # triggered campaigns
    "trace_id": "text",  # tracing
    "features": "text",  # the feature values each decision read
    "variant": "text",  # variant decisions
    "template": "text",
    "runner_up_value": "real",
}


def store_path(settings: Settings) -> Path:
    """Where the API's decisions are: beside the batch's Parquet runs, outside their glob."""
    return settings.decisions_dir / "api" / "decisions.db"


def answer_json(answer: dict[str, Any]) -> str:
    """The stored form of an answer (keys sorted)."""
    return orjson.dumps(answer, option=orjson.OPT_SORT_KEYS).decode()


def request_digest(customer_id: int, campaign: str) -> str:
    return hashlib.sha256(f"{int(customer_id)}|{campaign}".encode()).hexdigest()


class ApiDecisionStore:
    """One row per request id: the decision in the batch schema plus ``decided_via = "api"``, and
    the exact answer given, so a repeated request id gets the same answer and no second row, and
    the feature values the decision read (``features``, JSON; for ``campaign explain``). The
    request's free-form ``context`` is not stored (it may hold personal data)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._con.execute("pragma journal_mode=wal")
        self._con.execute("pragma synchronous=normal")
        self._con.executescript(STORE_SCHEMA)
        columns = {row[1] for row in self._con.execute("pragma table_info(api_decisions)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in columns:
                self._con.execute(f"alter table api_decisions add column {column} {kind}")
        self._lock = threading.Lock()

    def get(self, request_id: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            row = self._con.execute(
                "select request_digest, answer from api_decisions where request_id = ?",
                (request_id,),
            ).fetchone()
        return (row[0], orjson.loads(row[1])) if row else None

    def put_many(self, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Insert the rows whose request id is new; return the stored answer of every one."""
        if not rows:
            return {}
        placeholders = ", ".join("?" * len(STORE_COLUMNS))
        with self._lock:
            self._con.execute("begin immediate")
            try:
                self._con.executemany(
                    f"insert or ignore into api_decisions ({', '.join(STORE_COLUMNS)})"
                    f" values ({placeholders})",
                    [tuple(row[c] for c in STORE_COLUMNS) for row in rows],
                )
                self._con.execute("commit")
            except BaseException:
                self._con.execute("rollback")
                raise
            ids = [row["request_id"] for row in rows]
            stored = self._con.execute(
                f"select request_id, answer from api_decisions"
                f" where request_id in ({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
        return {rid: orjson.loads(answer) for rid, answer in stored}

    def frame(
        self, customer_id: int | None = None, campaign: str | None = None, day: str | None = None
    ) -> pd.DataFrame:
        """Stored decisions in the batch schema (plus the API's columns), oldest first."""
        where, params = ["1 = 1"], []
        for column, value in (
            ("customer_id", customer_id),
            ("campaign", campaign),
            ("decided_on", day),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        with self._lock:
            frame = pd.read_sql_query(
                f"select * from api_decisions where {' and '.join(where)} order by decided_at",
                self._con,
                params=params,
            )
        for column in ("decided_at", "feature_timestamp", "deferred_until"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        frame["dry_run"] = frame["dry_run"].astype(bool)
        return frame

    def close(self) -> None:
        with self._lock:
            self._con.close()


def api_decisions(
    decisions_dir: Path, customer_id: int, campaign: str | None, day: str
) -> pd.DataFrame:
    """``decision_store.explain`` for the API's decisions (empty when the API decided nothing)."""
    path = Path(decisions_dir) / "api" / "decisions.db"
    if not path.exists():
        return pd.DataFrame()
    store = ApiDecisionStore(path)
    try:
        return store.frame(customer_id, campaign, day)
    finally:
        store.close()
