"""The raw load into the Postgres warehouse, run after run: dbt's staging views over the raw
tables must survive a reload, and a changed attribute declaration must reach the table.

The second production-profile run used to fail here: the load dropped ``raw.customer_attributes``
on every run, which Postgres refuses while dbt's ``stg_raw__customer_attributes`` view reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg2
import pytest

from orchestration.core.world.attributes import AttributeDeclaration, load_attributes
from orchestration.core.world.synthetic import WorldSpec, generate_world
from orchestration.core.world.warehouse_load import load_raw_tables
from orchestration.settings import ATTRIBUTES_FILE, postgres_database_url
from tests.production.servers import production_servers

pytestmark = pytest.mark.production

AS_OF = datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    raw_dir = tmp_path_factory.mktemp("raw")
    generate_world(WorldSpec(customers=300, seed=5, as_of=AS_OF), raw_dir, raw_dir / "gt")
    with production_servers() as servers:
        yield raw_dir, postgres_database_url(servers.postgres_url, "warehouse")


def _query(url: str, sql: str) -> list[tuple]:
    with psycopg2.connect(url) as con, con.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall() if cur.description else []
    con.close()
    return rows


def _columns(url: str) -> list[str]:
    return [
        name
        for (name,) in _query(
            url,
            "select column_name from information_schema.columns where table_schema = 'raw'"
            " and table_name = 'customer_attributes' order by ordinal_position",
        )
    ]


def test_a_reload_keeps_the_views_that_read_the_raw_tables(warehouse):
    raw_dir, url = warehouse
    declaration = load_attributes(ATTRIBUTES_FILE)
    load_raw_tables(raw_dir, url, declaration)
    _query(url, "create schema if not exists analytics")
    _query(
        url,
        "create or replace view analytics.attribute_rows as select * from raw.customer_attributes",
    )
    before = _query(url, "select count(*) from analytics.attribute_rows")[0][0]
    load_raw_tables(raw_dir, url, declaration)  # the next run, same declaration
    assert before > 0
    assert _query(url, "select count(*) from analytics.attribute_rows")[0][0] == before


def test_a_changed_declaration_recreates_the_attribute_table(warehouse):
    raw_dir, url = warehouse
    declaration = load_attributes(ATTRIBUTES_FILE)
    load_raw_tables(raw_dir, url, declaration)
    first = declaration.attributes[0].name
    fewer = AttributeDeclaration(attributes=declaration.attributes[:1])
    load_raw_tables(raw_dir, url, fewer)
    assert _columns(url) == ["customer_id", "valid_from", first]
    load_raw_tables(raw_dir, url, declaration)
    assert _columns(url) == ["customer_id", "valid_from", *(a.name for a in declaration.attributes)]
