"""The safety tables only grow: what was suppressed or opted out at the last release still is.

Suppressions and opt-outs (consent events with ``is_opted_in`` false) are facts. A raw set in
which one of them, present at the last released run, has disappeared (an old export, a truncated
file, a join that dropped rows) would quietly switch safety off for those customers, so it blocks
the release. Lifting is an explicit event (see ``orchestration.core.world.contract``): an opt-in
event after the opt-out (the opt-out stays in the log), or a suppression's row removed together
with its row in the optional ``suppression_lifts`` table.

A :class:`SafetyFingerprint` is the multiset of natural keys of those facts, counted:

- ``suppressions``: (customer_id, channel, reason), channel null meaning every channel;
- ``consent_events``: the opt-out events per (customer_id, channel);
- ``suppression_lifts``: the recorded lifts per (customer_id, channel, reason).

Natural keys, not the ids: a re-export that renumbers ``suppression_id`` loses nothing, and the
synthetic world regenerated at a later clock keeps its keys. Channels and reasons are stored as
small codes (normalized: trimmed, lower case), so 10M customers' opt-outs stay a few hundred MB.

The release writes the fingerprint of what it released from (:func:`record_release_fingerprint`,
under the gateway directory); the blocking check ``safety_tables_only_grow`` of each table
:func:`compare` s the raw data of its run with it. ``max_shrink_share`` (default 0) is the share of
the last release's facts that may disappear unexplained; an emptied table blocks whatever the
share.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from orchestration.core.world.contract import (
    CHANNELS,
    CONSENT_EVENTS,
    SUPPRESSION_LIFTS,
    SUPPRESSION_REASONS,
    SUPPRESSIONS,
    raw_path,
)

if TYPE_CHECKING:
    import duckdb

FINGERPRINT_FILE = "safety_at_last_release.parquet"
# The share of the last release's suppressions (or opt-outs) that may disappear without a lift
# (CAMPAIGN_SAFETY_MAX_SHRINK_SHARE overrides it): 0, any disappearance blocks.
MAX_SHRINK_SHARE = 0.0
# The tables the guard watches, each with the blocking check of its raw asset.
SAFETY_TABLES: tuple[str, ...] = (SUPPRESSIONS.name, CONSENT_EVENTS.name)
_LIFTS = SUPPRESSION_LIFTS.name
_TABLE_CODES = {SUPPRESSIONS.name: 0, CONSENT_EVENTS.name: 1, _LIFTS: 2}
_NO_CHANNEL, _OTHER = -1, -2  # channel/reason codes besides the positions in the contract sets
_METADATA_KEY = b"safety_fingerprint"
_KEYS_SCHEMA = pa.schema(
    [
        ("table_code", pa.int8()),
        ("customer_id", pa.int64()),
        ("channel", pa.int8()),
        ("reason", pa.int8()),
        ("n", pa.int64()),
    ]
)


@dataclass(frozen=True)
class SafetyFingerprint:
    """The counted keys of the safety facts of one raw directory (see the module doc)."""

    keys: pa.Table  # _KEYS_SCHEMA
    rows: dict[str, int]  # suppressions: rows; consent_events: opt-out events; lifts: rows
    run_id: str | None = None
    taken_at: str | None = None


@dataclass(frozen=True)
class TableVerdict:
    """One safety table against the last release."""

    table: str
    passed: bool
    message: str
    previous_rows: int | None  # None: no release recorded yet
    current_rows: int
    disappeared: int = 0  # facts of the last release missing now, lifts not counted
    lifted: int = 0  # disappearances explained by a lift recorded since the last release
    share: float = 0.0  # disappeared / previous_rows
    max_shrink_share: float = MAX_SHRINK_SHARE
    previous_run_id: str | None = None
    example: str = ""

    def as_metadata(self) -> dict[str, object]:
        return {
            "table": self.table,
            "first_release": self.previous_rows is None,
            "previous_rows": -1 if self.previous_rows is None else self.previous_rows,
            "current_rows": self.current_rows,
            "disappeared": self.disappeared,
            "lifted": self.lifted,
            "shrink_share": round(self.share, 6),
            "max_shrink_share": self.max_shrink_share,
            "last_release_run_id": self.previous_run_id or "none",
        }


@dataclass(frozen=True)
class SafetyVerdict:
    tables: dict[str, TableVerdict] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.tables.values())

    @property
    def message(self) -> str:
        return "\n".join(v.message for v in self.tables.values())


# --- fingerprint ------------------------------------------------------------------------------


def _code_sql(column: str, values: tuple[str, ...]) -> str:
    """A normalized text column as its position in ``values``, -1 for none, -2 for another."""
    norm = f"nullif(lower(trim(cast({column} as varchar))), '')"
    cases = " ".join(f"when '{v}' then {i}" for i, v in enumerate(values))
    return (
        f"(case when {norm} is null then {_NO_CHANNEL} "
        f"else case {norm} {cases} else {_OTHER} end end)::tinyint"
    )


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _table_sql(raw_dir: Path, table: str) -> str | None:
    code = _TABLE_CODES[table]
    path = raw_path(raw_dir, table)
    if table == CONSENT_EVENTS.name:
        return f"""
            select {code}::tinyint as table_code, customer_id::bigint as customer_id,
                   {_code_sql("channel", CHANNELS)} as channel, {_NO_CHANNEL}::tinyint as reason,
                   count(*)::bigint as n
            from read_parquet({_sql_path(path)}) where is_opted_in = false group by all"""
    if table == _LIFTS and not path.exists():
        return None  # optional: no lifts recorded
    return f"""
        select {code}::tinyint as table_code, customer_id::bigint as customer_id,
               {_code_sql("channel", CHANNELS)} as channel,
               {_code_sql("reason", SUPPRESSION_REASONS)} as reason, count(*)::bigint as n
        from read_parquet({_sql_path(path)}) group by all"""


def _connect() -> duckdb.DuckDBPyConnection:
    import duckdb

    return duckdb.connect()


def fingerprint(
    raw_dir: Path,
    tables: tuple[str, ...] = SAFETY_TABLES,
    run_id: str | None = None,
    taken_at: str | None = None,
) -> SafetyFingerprint:
    """The counted keys of the safety facts in ``raw_dir`` (the suppression lifts come with
    ``suppressions``). Raises when a watched file is missing or unreadable."""
    wanted = list(tables) + ([_LIFTS] if SUPPRESSIONS.name in tables else [])
    parts = [sql for table in wanted if (sql := _table_sql(Path(raw_dir), table)) is not None]
    con = _connect()
    try:
        keys = con.sql(
            " union all ".join(parts) + " order by table_code, customer_id, channel, reason"
        ).to_arrow_table()
    finally:
        con.close()
    keys = keys.cast(_KEYS_SCHEMA)
    rows = {}
    for table in wanted:
        mask = pc.equal(keys["table_code"], _TABLE_CODES[table])
        rows[table] = int(pc.sum(keys["n"].filter(mask)).as_py() or 0)
    return SafetyFingerprint(keys=keys, rows=rows, run_id=run_id, taken_at=taken_at)


def fingerprint_path(gateway_dir: Path) -> Path:
    return Path(gateway_dir) / FINGERPRINT_FILE


def save(fingerprint: SafetyFingerprint, path: Path) -> None:
    """Write ``fingerprint`` to ``path`` (Parquet), atomically: a crash leaves the old one."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "run_id": fingerprint.run_id,
        "taken_at": fingerprint.taken_at,
        "rows": fingerprint.rows,
    }
    table = fingerprint.keys.replace_schema_metadata({_METADATA_KEY: json.dumps(meta).encode()})
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial)
    os.replace(partial, path)


def load(path: Path) -> SafetyFingerprint | None:
    """The fingerprint saved at ``path``; None when there is none (no release yet)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        return None
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(_METADATA_KEY, b"{}"))
    return SafetyFingerprint(
        keys=table.replace_schema_metadata(None).cast(_KEYS_SCHEMA),
        rows={k: int(v) for k, v in meta.get("rows", {}).items()},
        run_id=meta.get("run_id"),
        taken_at=meta.get("taken_at"),
    )


def record_release_fingerprint(
    raw_dir: Path, gateway_dir: Path, run_id: str, released_at: str
) -> SafetyFingerprint:
    """Fingerprint the raw data a release was made from and save it as the new baseline."""
    taken = fingerprint(raw_dir, run_id=run_id, taken_at=released_at)
    save(taken, fingerprint_path(gateway_dir))
    return taken


# --- compare ----------------------------------------------------------------------------------

_GONE_SQL = """
with prev as (select * from previous where table_code = $code),
cur as (select * from current where table_code = $code),
gone as (
    select prev.customer_id, prev.channel, prev.reason,
           greatest(prev.n - coalesce(cur.n, 0), 0) as gone
    from prev left join cur using (customer_id, channel, reason)),
new_lifts as (
    select lifts.customer_id, lifts.channel, lifts.reason,
           greatest(lifts.n - coalesce(old.n, 0), 0) as lifts
    from (select * from current where table_code = $lift_code) as lifts
    left join (select * from previous where table_code = $lift_code) as old
        using (customer_id, channel, reason)),
net as (
    select gone.customer_id, gone.channel, gone.reason, gone.gone,
           least(gone.gone, coalesce(new_lifts.lifts, 0)) as lifted
    from gone left join new_lifts using (customer_id, channel, reason)
    where gone.gone > 0)
select coalesce(sum(gone), 0)::bigint, coalesce(sum(lifted), 0)::bigint,
       arg_min(struct_pack(customer_id, channel, reason), customer_id)
           filter (where gone > lifted)
from net
"""


def _describe_key(table: str, key: dict | None) -> str:
    if not key:
        return ""
    channel = key["channel"]
    parts = [f"customer_id={key['customer_id']}"]
    if channel == _NO_CHANNEL:
        parts.append(
            "channel=null (every channel)" if table == SUPPRESSIONS.name else "channel=null"
        )
    else:
        parts.append(f"channel={CHANNELS[channel] if 0 <= channel < len(CHANNELS) else '?'}")
    if table == SUPPRESSIONS.name:
        reason = key["reason"]
        known = 0 <= reason < len(SUPPRESSION_REASONS)
        parts.append(f"reason={SUPPRESSION_REASONS[reason] if known else '?'}")
    return ", ".join(parts)


_WHAT = {  # what a count of the table is, one fact, several facts
    SUPPRESSIONS.name: ("rows", "suppression", "suppressions"),
    CONSENT_EVENTS.name: ("opt-out events", "opt-out", "opt-outs"),
}
_FIX = {
    SUPPRESSIONS.name: (
        "restore the file, or record each lift as an explicit event in "
        "raw/suppression_lifts.parquet (lift_id, customer_id, channel, reason, lifted_at)"
    ),
    CONSENT_EVENTS.name: (
        "restore the file; a customer who opts back in is a new consent event with is_opted_in "
        "true, never a deleted opt-out"
    ),
}


def _compare_table(
    con: duckdb.DuckDBPyConnection,
    previous: SafetyFingerprint,
    current: SafetyFingerprint,
    table: str,
    max_shrink_share: float,
) -> TableVerdict:
    rows_word, fact, facts = _WHAT[table]
    label = f"raw/{table}"
    before, now = previous.rows.get(table, 0), current.rows.get(table, 0)
    gone, lifted, key = con.execute(
        _GONE_SQL, {"code": _TABLE_CODES[table], "lift_code": _TABLE_CODES[_LIFTS]}
    ).fetchone()
    unexplained = int(gone) - int(lifted)
    share = unexplained / before if before else 0.0
    emptied = before > 0 and now == 0 and unexplained > 0
    passed = unexplained == 0 or (share <= max_shrink_share and not emptied)
    run = f" (run {previous.run_id})" if previous.run_id else ""
    head = f"{label}: {before:,} {rows_word} at the last release{run}, {now:,} now; "
    example = _describe_key(table, key)
    lifts = f"{lifted:,} lifted by explicit lift events" if lifted else ""
    if unexplained == 0:
        tail = "none disappeared" + (f" ({lifts})" if lifts else "")
    else:
        tail = f"{unexplained:,} {fact if unexplained == 1 else facts} disappeared" + (
            f" (e.g. {example})" if example else ""
        )
        tail += f", {lifts.replace(' lifted', ' more lifted')}" if lifts else ""
        if max_shrink_share > 0:
            within = "within" if share <= max_shrink_share else "more than"
            tail += (
                f", {share:.2%} of the last release's, {within} the allowed {max_shrink_share:.2%}"
            )
        if emptied:
            tail += ", and the table is empty"
        if not passed:
            tail += f": {_FIX[table]}"
    return TableVerdict(
        table=table,
        passed=passed,
        message=head + tail,
        previous_rows=before,
        current_rows=now,
        disappeared=unexplained,
        lifted=int(lifted),
        share=share,
        max_shrink_share=max_shrink_share,
        previous_run_id=previous.run_id,
        example=example,
    )


def compare(
    previous: SafetyFingerprint | None,
    current: SafetyFingerprint,
    max_shrink_share: float = MAX_SHRINK_SHARE,
    tables: tuple[str, ...] = SAFETY_TABLES,
) -> SafetyVerdict:
    """Whether the safety facts of the last release (``previous``) are all still in ``current``
    (or lifted by an explicit event since), per table, with the counts and a message that names
    the table. No previous fingerprint: the first release, which passes."""
    if not 0 <= max_shrink_share <= 1:
        raise ValueError(f"max_shrink_share must be in [0, 1], got {max_shrink_share}")
    if previous is None:
        return SafetyVerdict(
            {
                t: TableVerdict(
                    table=t,
                    passed=True,
                    message=(
                        f"raw/{t}: no release recorded yet (the first release): nothing to "
                        f"compare; {current.rows.get(t, 0):,} {_WHAT[t][0]} now"
                    ),
                    previous_rows=None,
                    current_rows=current.rows.get(t, 0),
                    max_shrink_share=max_shrink_share,
                )
                for t in tables
            }
        )
    con = _connect()
    try:
        con.register("previous", previous.keys)
        con.register("current", current.keys)
        return SafetyVerdict(
            {t: _compare_table(con, previous, current, t, max_shrink_share) for t in tables}
        )
    finally:
        con.close()
