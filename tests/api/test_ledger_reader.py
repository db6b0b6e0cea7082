"""The decision API's ledger reads: today's sends per campaign and a customer's recent rows,
seen as soon as another process commits them (the reader keeps its count between commits)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from orchestration.core.decisioning.realtime import LedgerReader
from orchestration.core.delivery.ledger import SendLedger

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _add(path, campaign: str, customer: int, day: str) -> None:
    """A ledger row written by another connection (the batch's release, the dispatch)."""
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "insert into deliveries (idempotency_key, campaign, customer_id, channel, send_date,"
            " run_id, status, created_at, updated_at) values (?, ?, ?, 'email', ?, 'r1', 'due',"
            " ?, ?)",
            (f"{campaign}-{customer}-{day}", campaign, customer, day, day, day),
        )
    con.close()


def test_sends_committed_elsewhere_are_counted_at_the_next_request(tmp_path):
    path = tmp_path / "ledger.db"
    SendLedger(path).close()
    reader = LedgerReader(path)
    try:
        assert reader.sent_today("2026-03-02") == {}
        _add(path, "offer", 1, "2026-03-02")
        _add(path, "offer", 2, "2026-03-02")
        _add(path, "offer", 3, "2026-03-01")  # another day
        assert reader.sent_today("2026-03-02") == {"offer": 2}
        assert reader.sent_today("2026-03-02") == {"offer": 2}  # unchanged: the same count
        _add(path, "winback", 4, "2026-03-02")
        assert reader.sent_today("2026-03-02") == {"offer": 2, "winback": 1}
        assert reader.sent_today("2026-03-01") == {"offer": 1}
        history = reader.contacts([1, 3, 99], NOW, days=2)
        assert sorted(history["customer_id"]) == [1, 3]
    finally:
        reader.close()


def test_the_per_request_reads_use_an_index(tmp_path):
    path = tmp_path / "ledger.db"
    SendLedger(path).close()
    con = sqlite3.connect(path)
    plans = [
        con.execute(f"explain query plan {sql}", params).fetchall()
        for sql, params in (
            (
                "select campaign, count(*) from deliveries where send_date = ? group by campaign",
                ("2026-03-02",),
            ),
            (
                "select * from deliveries where send_date >= ? and customer_id in (?, ?)",
                ("2026-02-24", 1, 2),
            ),
        )
    ]
    con.close()
    for plan in plans:
        detail = " ".join(str(row[-1]) for row in plan)
        assert "SEARCH" in detail and "USING" in detail, detail
