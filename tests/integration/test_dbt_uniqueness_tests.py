"""The warehouse's uniqueness tests (``unique``, ``unique_combination_of_columns``) on DuckDB are
sort-based (dbt_project/macros/data_tests.sql); they must fail on exactly the duplicated keys the
textbook group-by finds, with the same row counts, and pass on unique data.

A scratch dbt project holds copies of the project's real macro and generic-test files and two
small models; ``dbt build --store-failures`` keeps each test's failing rows, which are compared
with an oracle counted in Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from orchestration.settings import DBT_PROJECT_DIR

BIN = Path(sys.executable).parent

# (id, customer_id, day): ids 2 and 7 repeat (7 three times), a null id twice (not a duplicate
# for `unique`); (1, d1) repeats, and so does (null, null): nulls group together.
ROWS = [
    (1, 1, "2026-01-01"),
    (2, 1, "2026-01-01"),
    (2, 2, "2026-01-02"),
    (3, 3, None),
    (7, None, None),
    (7, None, None),
    (7, 4, "2026-01-01"),
    (None, 5, "2026-01-03"),
    (None, 6, "2026-01-03"),
]


def _values(rows: list[tuple]) -> str:
    def cell(value, kind):
        return "null" if value is None else (f"date '{value}'" if kind == "date" else str(value))

    return ", ".join(
        f"({cell(i, 'int')}::bigint, {cell(c, 'int')}::bigint, {cell(d, 'date')})"
        for i, c, d in rows
    )


def _project(root: Path, rows: list[tuple]) -> None:
    (root / "models").mkdir(parents=True)
    (root / "macros").mkdir()
    (root / "tests" / "generic").mkdir(parents=True)
    shutil.copy(DBT_PROJECT_DIR / "macros" / "data_tests.sql", root / "macros")
    shutil.copy(
        DBT_PROJECT_DIR / "tests" / "generic" / "unique_combination_of_columns.sql",
        root / "tests" / "generic",
    )
    (root / "dbt_project.yml").write_text(
        "name: uniqueness\nversion: '1.0'\nconfig-version: 2\nprofile: uniqueness\n"
        "data_tests:\n  +store_failures: true\n  +severity: warn\n"
    )
    (root / "profiles.yml").write_text(
        f"uniqueness:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {root / 'scratch.duckdb'}\n      threads: 1\n"
    )
    (root / "models" / "events.sql").write_text(
        f"select * from (values {_values(rows)}) as t(event_id, customer_id, day)"
    )
    (root / "models" / "events.yml").write_text(
        "models:\n  - name: events\n    columns:\n      - name: event_id\n"
        "        data_tests: [unique]\n"
        "    data_tests:\n      - unique_combination_of_columns:\n"
        "          arguments:\n            combination_of_columns: [customer_id, day]\n"
    )


def _failures(root: Path) -> dict[str, Counter]:
    completed = subprocess.run(
        [str(BIN / "dbt"), "build", "--profiles-dir", str(root)],
        cwd=root,
        env={**os.environ, "DBT_LOG_PATH": str(root / "logs")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    with duckdb.connect(str(root / "scratch.duckdb"), read_only=True) as con:
        tables = dict(
            con.execute(
                "select table_name, schema_name || '.' || table_name from duckdb_tables() "
                "where schema_name like '%dbt_test__audit'"
            ).fetchall()
        )
        unique = next(t for name, t in tables.items() if name.startswith("unique_events"))
        combination = next(t for name, t in tables.items() if name.startswith("unique_combination"))
        return {
            "unique": Counter(
                dict(con.execute(f"select unique_field, n_records from {unique}").fetchall())
            ),
            "combination": Counter(
                {
                    (c, None if d is None else d.isoformat()): n
                    for c, d, n in con.execute(
                        f"select customer_id, day, count_rows from {combination}"
                    ).fetchall()
                }
            ),
        }


def _duplicated(keys: list) -> Counter:
    counts = Counter(keys)
    return Counter({key: n for key, n in counts.items() if n > 1})


@pytest.mark.parametrize("rows", [ROWS, [(i, i, f"2026-01-0{i}") for i in range(1, 8)]])
def test_uniqueness_tests_fail_on_exactly_the_duplicated_keys(tmp_path, rows):
    _project(tmp_path, rows)
    failures = _failures(tmp_path)
    assert failures["unique"] == _duplicated([i for i, _, _ in rows if i is not None])
    assert failures["combination"] == _duplicated([(c, d) for _, c, d in rows])
    if rows is ROWS:
        assert failures["unique"] == {2: 2, 7: 3}
        assert failures["combination"] == {(1, "2026-01-01"): 2, (None, None): 2}
