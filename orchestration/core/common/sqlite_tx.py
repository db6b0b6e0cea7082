"""A write transaction on a SQLite connection opened with ``isolation_level=None``.

``BEGIN IMMEDIATE`` takes the write lock up front, so two processes writing the same file (two
send runs, two sensor ticks) serialise instead of failing halfway with ``database is locked``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate_transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    con.execute("begin immediate")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
