"""The synthetic world: contract-exact files, deterministic, and a known, recoverable effect."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.core.world import synthetic as synthetic_world
from orchestration.core.world.attributes import load_attributes
from orchestration.core.world.contract import TIMESTAMP, contract_tables, raw_path
from orchestration.core.world.synthetic import PAST_CAMPAIGNS, WorldSpec, generate_world
from orchestration.core.world.validation import validate_raw_dir
from orchestration.settings import ATTRIBUTES_FILE

# the contract as the default declaration (config/attributes.yaml) shapes customer_attributes
RAW_TABLES = contract_tables(load_attributes(ATTRIBUTES_FILE))

AS_OF = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
SMALL = 3_000


def _generate(root: Path, **spec) -> tuple[Path, Path, synthetic_world.WorldSummary]:
    raw, truth = root / "raw", root / "ground_truth"
    summary = generate_world(WorldSpec(as_of=AS_OF, **{"customers": SMALL, **spec}), raw, truth)
    return raw, truth, summary


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def large_world(tmp_path_factory):
    """Enough customers (about 14k exposures) to compare the arms statistically."""
    return _generate(tmp_path_factory.mktemp("large"), customers=20_000, seed=7)


def _sql(query: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(query).fetchall()
    finally:
        con.close()


def _digest(raw: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(raw.iterdir())}


def test_every_raw_file_has_exactly_the_contract_schema(world):
    raw, _, summary = world
    assert sorted(p.name for p in raw.iterdir()) == sorted(t.file_name for t in RAW_TABLES)
    for table in RAW_TABLES:
        schema = pq.read_schema(raw_path(raw, table))
        assert schema.names == table.schema.names, table.name
        assert schema.types == table.schema.types, table.name
        assert pq.ParquetFile(raw_path(raw, table)).metadata.num_rows == summary.rows[table.name]
        assert summary.rows[table.name] > 0, table.name
    assert summary.rows["customers"] == SMALL


def test_primary_keys_are_unique_and_never_null(world):
    raw = world[0]
    for table in RAW_TABLES:
        cols = ", ".join(table.primary_key)
        nulls = " OR ".join(f"{c} IS NULL" for c in table.primary_key)
        ((dupes,),) = _sql(
            f"SELECT count(*) FROM (SELECT {cols} FROM '{raw_path(raw, table)}' "
            f"GROUP BY {cols} HAVING count(*) > 1)"
        )
        ((null_keys,),) = _sql(f"SELECT count(*) FROM '{raw_path(raw, table)}' WHERE {nulls}")
        assert (dupes, null_keys) == (0, 0), table.name


def test_same_seed_gives_identical_files_and_another_seed_does_not(world, tmp_path):
    raw, truth, _ = world
    again_raw, again_truth, _ = _generate(tmp_path / "again")
    assert _digest(again_raw) == _digest(raw)
    assert (again_truth / "customer_uplift.parquet").read_bytes() == (
        truth / "customer_uplift.parquet"
    ).read_bytes()
    other_raw, _, _ = _generate(tmp_path / "other", seed=43)
    differing = [n for n, d in _digest(other_raw).items() if _digest(raw)[n] != d]
    assert "orders.parquet" in differing and "customers.parquet" in differing


def test_ids_stay_unique_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic_world, "CHUNK_CUSTOMERS", 1_000)
    raw, _, summary = _generate(tmp_path, customers=2_500)
    assert summary.rows["customers"] == 2_500
    ((lo, hi, n),) = _sql(
        f"SELECT min(customer_id), max(customer_id), count(*) FROM '{raw}/customers.parquet'"
    )
    assert (lo, hi, n) == (1, 2_500, 2_500)
    assert not any(validate_raw_dir(raw, now=AS_OF).values())
    assert pq.ParquetFile(raw / "orders.parquet").metadata.num_row_groups == 3


def test_progress_counts_every_customer(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic_world, "CHUNK_CUSTOMERS", 1_000)
    done: list[int] = []
    generate_world(
        WorldSpec(customers=2_500, as_of=AS_OF), tmp_path / "raw", tmp_path / "gt", done.append
    )
    assert done == [1_000, 1_000, 500]


def test_every_timestamp_is_before_as_of(world):
    raw = world[0]
    for table in RAW_TABLES:
        for field in table.schema:
            if field.type != TIMESTAMP:
                continue
            ((newest,),) = _sql(f"SELECT max({field.name}) FROM '{raw_path(raw, table)}'")
            assert newest < AS_OF, f"{table.name}.{field.name}"
    # and the activity tables are fresh: something happened in the last day
    ((newest_order,),) = _sql(f"SELECT max(ordered_at) FROM '{raw}/orders.parquet'")
    assert AS_OF - newest_order < timedelta(days=1)


def test_exposures_only_reach_customers_opted_in_and_not_suppressed_at_exposure(world):
    raw = world[0]
    ((exposures, not_opted_in, suppressed, not_signed_up),) = _sql(
        f"""
        WITH exposures AS (SELECT * FROM '{raw}/campaign_exposures.parquet'),
        consent AS (
            SELECT e.exposure_id,
                   arg_max(c.is_opted_in, c.consented_at) AS is_opted_in
            FROM exposures e
            LEFT JOIN '{raw}/consent_events.parquet' c
              ON c.customer_id = e.customer_id AND c.channel = e.channel
             AND c.consented_at <= e.exposed_at
            GROUP BY e.exposure_id
        ),
        suppressed AS (
            SELECT DISTINCT e.exposure_id
            FROM exposures e
            JOIN '{raw}/suppressions.parquet' s
              ON s.customer_id = e.customer_id
             AND (s.channel IS NULL OR s.channel = e.channel)
             AND s.suppressed_at <= e.exposed_at
        )
        SELECT count(*),
               count_if(coalesce(NOT consent.is_opted_in, true)),
               count_if(suppressed.exposure_id IS NOT NULL),
               count_if(c.signed_up_at >= e.exposed_at)
        FROM exposures e
        JOIN consent USING (exposure_id)
        LEFT JOIN suppressed USING (exposure_id)
        JOIN '{raw}/customers.parquet' c USING (customer_id)
        """
    )
    assert exposures > 500
    assert (not_opted_in, suppressed, not_signed_up) == (0, 0, 0)


def test_campaigns_are_the_four_past_randomized_ones(world):
    raw, _, summary = world
    rows = _sql(
        f"SELECT campaign_id, channel, min(exposed_at), max(exposed_at), count(*) "
        f"FROM '{raw}/campaign_exposures.parquet' GROUP BY ALL ORDER BY min(exposed_at)"
    )
    assert [r[0] for r in rows] == [c.campaign_id for c in PAST_CAMPAIGNS]
    for (campaign_id, channel, first, last, count), campaign, listed in zip(
        rows, PAST_CAMPAIGNS, summary.campaigns, strict=True
    ):
        day = datetime(2025, 6, 1, tzinfo=UTC) - timedelta(days=campaign.days_before)
        assert channel == campaign.channel
        assert day + timedelta(hours=9) <= first <= last < day + timedelta(hours=18)
        assert listed["campaign_id"] == campaign_id and listed["exposures"] == count
        assert listed["exposed_day"] == day.date().isoformat()


def test_arms_are_balanced(large_world):
    raw = large_world[0]
    for campaign_id, treated, total in _sql(
        f"SELECT campaign_id, count_if(arm = 'treatment'), count(*) "
        f"FROM '{raw}/campaign_exposures.parquet' GROUP BY ALL"
    ):
        assert total > 1_500, campaign_id
        assert abs(treated / total - 0.5) < 0.05, campaign_id


def test_difference_between_arms_recovers_the_mean_true_uplift(large_world):
    """The 14-day conversion difference between arms estimates the exposed' mean true uplift."""
    raw, truth, _ = large_world
    ((n_t, n_c, rate_t, rate_c, mean_uplift, expected_t, expected_c, max_orders),) = _sql(
        f"""
        WITH outcomes AS (
            SELECT e.exposure_id, e.customer_id, e.arm, count(o.order_id) AS orders
            FROM '{raw}/campaign_exposures.parquet' e
            LEFT JOIN '{raw}/orders.parquet' o
              ON o.customer_id = e.customer_id
             AND o.ordered_at >= e.exposed_at
             AND o.ordered_at < e.exposed_at + INTERVAL 14 DAY
            GROUP BY ALL
        )
        SELECT count_if(arm = 'treatment'), count_if(arm = 'control'),
               avg((orders > 0)::INT) FILTER (WHERE arm = 'treatment'),
               avg((orders > 0)::INT) FILTER (WHERE arm = 'control'),
               avg(t.true_uplift),
               avg(t.treated_conversion_probability) FILTER (WHERE arm = 'treatment'),
               avg(t.base_conversion_probability) FILTER (WHERE arm = 'control'),
               max(orders)
        FROM outcomes
        JOIN '{truth}/customer_uplift.parquet' t USING (customer_id)
        """
    )
    ate = rate_t - rate_c
    se = (rate_t * (1 - rate_t) / n_t + rate_c * (1 - rate_c) / n_c) ** 0.5
    print(f"exposures={n_t + n_c} ATE={ate:.4f} mean true uplift={mean_uplift:.4f} se={se:.4f}")
    assert max_orders == 1  # the window holds the campaign outcome only: one order or none
    assert 0.01 < mean_uplift < 0.06
    assert abs(ate - mean_uplift) < 4 * se
    # each arm converts at its own probability
    assert abs(rate_t - expected_t) < 4 * (expected_t * (1 - expected_t) / n_t) ** 0.5
    assert abs(rate_c - expected_c) < 4 * (expected_c * (1 - expected_c) / n_c) ** 0.5


def test_ground_truth_stays_out_of_the_raw_tables(world):
    raw, truth, _ = world
    truth_columns = set(pq.read_schema(truth / "customer_uplift.parquet").names) - {"customer_id"}
    assert truth_columns == {
        "segment",
        "base_conversion_probability",
        "treated_conversion_probability",
        "true_uplift",
    }
    for table in RAW_TABLES:
        assert not truth_columns & set(pq.read_schema(raw_path(raw, table)).names)
    segments = dict(
        _sql(f"SELECT segment, count(*) FROM '{truth}/customer_uplift.parquet' GROUP BY 1")
    )
    assert set(segments) == {"persuadable", "sure_thing", "lost_cause", "sleeping_dog"}
    assert sum(segments.values()) == SMALL
    meta = json.loads((truth / "world.json").read_text())
    assert meta["as_of"] == AS_OF.isoformat() and meta["rows"]["customers"] == SMALL
    assert [c["campaign_id"] for c in meta["campaigns"]] == [c.campaign_id for c in PAST_CAMPAIGNS]


def test_true_uplift_follows_the_segments(world):
    truth = world[1]
    stats = {
        seg: (lo, hi)
        for seg, lo, hi in _sql(
            f"SELECT segment, min(true_uplift), max(true_uplift) "
            f"FROM '{truth}/customer_uplift.parquet' GROUP BY 1"
        )
    }
    assert stats["persuadable"][0] > 0.05
    assert stats["sleeping_dog"][1] < -0.02
    assert stats["sure_thing"][0] >= -0.01 and stats["sure_thing"][1] <= 0.01
    assert stats["lost_cause"][0] >= 0 and stats["lost_cause"][1] <= 0.011


def test_drift_raises_recent_orders_and_events_only(world, tmp_path):
    raw = world[0]
    drifted, _, _ = _generate(tmp_path, drift=1.0)
    cutoff = f"TIMESTAMPTZ '{(AS_OF - timedelta(days=30)).isoformat()}'"

    def counts(directory: Path, table: str, column: str) -> tuple[int, int]:
        ((before, recent),) = _sql(
            f"SELECT count_if({column} < {cutoff}), count_if({column} >= {cutoff}) "
            f"FROM '{directory}/{table}.parquet'"
        )
        return before, recent

    for table, column, factor in (
        ("orders", "ordered_at", 3),
        ("engagement_events", "occurred_at", 4),
    ):
        base_before, base_recent = counts(raw, table, column)
        drift_before, drift_recent = counts(drifted, table, column)
        assert drift_before == base_before, table  # the past is the same world
        assert drift_recent > 0.7 * factor * base_recent, table
    assert _digest(drifted)["customers.parquet"] == _digest(raw)["customers.parquet"]


def test_a_generated_world_passes_the_contract_validation(world):
    problems = validate_raw_dir(world[0], now=AS_OF)
    assert problems == {t.name: [] for t in RAW_TABLES}


def test_files_are_replaced_atomically(world, tmp_path):
    raw, _, _ = _generate(tmp_path, customers=1_000)
    assert not list(tmp_path.rglob("*.tmp"))
    before = _digest(raw)
    _generate(tmp_path, customers=1_000)
    assert _digest(raw) == before


def test_as_of_must_be_timezone_aware(tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_world(
            WorldSpec(customers=1_000, as_of=datetime(2025, 1, 1)), tmp_path / "r", tmp_path / "g"
        )


def test_default_as_of_is_now_truncated_to_the_second(tmp_path):
    before = datetime.now(UTC).replace(microsecond=0)
    summary = generate_world(WorldSpec(customers=1_000), tmp_path / "r", tmp_path / "g")
    assert summary.as_of.microsecond == 0
    assert before <= summary.as_of <= datetime.now(UTC)


@pytest.fixture(scope="module")
def variants_world(tmp_path_factory):
    """The past campaigns test two message variants (arms offer and reminder) against control."""
    return _generate(tmp_path_factory.mktemp("variants"), customers=20_000, seed=7, variants=True)


def test_the_variants_world_has_two_arms_each_with_its_own_effect(variants_world, large_world):
    raw, truth, _ = variants_world
    assert validate_raw_dir(raw, now=AS_OF) == {t.name: [] for t in RAW_TABLES}
    rows = _sql(
        f"""
        WITH outcomes AS (
            SELECT e.exposure_id, e.customer_id, e.arm, count(o.order_id) AS orders
            FROM '{raw}/campaign_exposures.parquet' e
            LEFT JOIN '{raw}/orders.parquet' o
              ON o.customer_id = e.customer_id
             AND o.ordered_at >= e.exposed_at
             AND o.ordered_at < e.exposed_at + INTERVAL 14 DAY
            GROUP BY ALL
        )
        SELECT arm, count(*), avg((orders > 0)::INT),
               avg(t.true_uplift__offer), avg(t.true_uplift__reminder)
        FROM outcomes JOIN '{truth}/customer_uplift.parquet' t USING (customer_id)
        GROUP BY arm ORDER BY arm
        """
    )
    by_arm = {arm: (n, rate, u_offer, u_reminder) for arm, n, rate, u_offer, u_reminder in rows}
    assert set(by_arm) == {"control", "offer", "reminder"}
    n_c, rate_c = by_arm["control"][:2]
    for arm, column in (("offer", 2), ("reminder", 3)):
        n, rate = by_arm[arm][:2]
        true_mean = by_arm[arm][column]
        se = (rate * (1 - rate) / n + rate_c * (1 - rate_c) / n_c) ** 0.5
        assert abs((rate - rate_c) - true_mean) < 4 * se, arm
    # the default world is unchanged by the option: still one 'treatment' arm
    exposures = pq.read_table(raw_path(large_world[0], "campaign_exposures")).column("arm")
    assert set(exposures.to_pylist()) == {"treatment", "control"}


def test_which_variant_is_best_depends_on_the_customer_type(variants_world):
    truth = variants_world[1]
    best = dict(
        _sql(
            f"""SELECT segment,
                   avg((true_uplift__reminder > true_uplift__offer)::INT)
            FROM '{truth}/customer_uplift.parquet' GROUP BY 1"""
        )
    )
    assert best["persuadable"] == 0  # the offer works far better for them
    assert best["lost_cause"] > 0.95  # only the reminder wakes them
    worst = _sql(
        f"""SELECT max(greatest(true_uplift__offer, true_uplift__reminder))
        FROM '{truth}/customer_uplift.parquet' WHERE segment = 'sleeping_dog'"""
    )
    assert worst[0][0] <= 0  # neither message is worth sending to a sleeping dog
