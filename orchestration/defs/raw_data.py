"""Raw data: land the raw data contract, and gate on its freshness.

The source is configuration (``CAMPAIGN_DATASET``): ``synthetic`` generates a seeded world with a
known treatment effect; ``files`` takes Parquet files a team put in ``data/raw/`` (or exported
from its systems) and only validates them against the contract; ``hillstrom`` fetches the public
Hillstrom e-mail campaign and maps it into the contract (no ground truth, no feedback: see
``orchestration.core.world.datasets.landing``).

Landing holds the data directory's run lock (``orchestration.core.common.run_lock``): a second
run writing the same directory stops with a message naming the holder. The safety tables only
grow: ``safety_tables_only_grow`` on raw suppressions and consent events blocks the release when
a suppression or an opt-out of the last release has disappeared without an explicit lift.
"""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset_check,
    multi_asset,
)

from orchestration.core.world.contract import ACTIVITY_TABLES, RAW_TABLES, raw_path
from orchestration.core.world.freshness import measure_freshness
from orchestration.core.world.safety_tables import SAFETY_TABLES
from orchestration.resources import CampaignSettings
from orchestration.settings import Settings

GROUP = "raw"
OWNER = "team:data-platform"
GROUND_TRUTH_KEY = AssetKey(["ground_truth", "customer_uplift"])


def raw_key(table: str) -> AssetKey:
    return AssetKey(["raw", table])


class RawDataConfig(Config):
    """Overrides for the synthetic world (defaults come from the environment settings)."""

    customers: int | None = None
    seed: int | None = None
    as_of: str | None = None  # ISO timestamp; default now. An old as_of makes stale data.
    drift: float = 0.0  # > 0 shifts behaviour in the last 30 days (a drift drill)


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


@multi_asset(
    specs=[
        *[
            AssetSpec(
                raw_key(t.name),
                description=t.description,
                group_name=GROUP,
                owners=[OWNER],
                kinds={"parquet"},
                tags={"contains_personal_data": str(t.contains_contact_details).lower()},
            )
            for t in RAW_TABLES
        ],
        AssetSpec(
            GROUND_TRUTH_KEY,
            description=(
                "True per-customer uplift of the synthetic world, for evaluation only: never a "
                "feature, never read by training or scoring."
            ),
            group_name="evaluation",
            owners=[OWNER],
            kinds={"parquet"},
            skippable=True,
        ),
    ],
    can_subset=False,
)
def raw_data(context: AssetExecutionContext, config: RawDataConfig, settings: CampaignSettings):
    """Land the raw tables (generate the synthetic world, or validate a team's own files)."""
    from orchestration.core.common.run_lock import run_lock
    from orchestration.settings import DATASETS

    s = settings.get()
    if s.dataset not in DATASETS:
        raise ValueError(
            f"CAMPAIGN_DATASET={s.dataset!r} is not supported; choose one of {', '.join(DATASETS)}"
        )
    with run_lock(s.data_dir, run_id=context.run.run_id):  # before anything is written
        extra = _land(context, config, s)
    yield from _materializations(s, extra)


def _land(context: AssetExecutionContext, config: RawDataConfig, s: Settings) -> dict[str, object]:
    """Write (or check) the raw tables; the run metadata of the landing."""
    from orchestration.core.world.attributes import load_attributes
    from orchestration.core.world.datasets.landing import claim_data_dir, land_hillstrom
    from orchestration.core.world.validation import require_valid_raw

    extra: dict[str, object] = {"dataset": s.dataset}
    if s.dataset == "hillstrom":
        extra.update(
            land_hillstrom(
                s,
                as_of=datetime.fromisoformat(config.as_of).astimezone(UTC)
                if config.as_of
                else None,
                seed=config.seed,
            )
        )
        context.log.info(
            f"mapped the Hillstrom campaign into {s.raw_dir} (as of {extra['as_of']}); "
            f"world clock {s.now().isoformat()}"
        )
    elif s.dataset == "synthetic":
        claim_data_dir(s.data_dir, "synthetic")
        from orchestration.core.world.feedback import apply_feedback, feedback_path, load_feedback
        from orchestration.core.world.synthetic import WorldSpec, generate_world

        spec = WorldSpec(
            customers=s.world_customers if config.customers is None else config.customers,
            seed=config.seed if config.seed is not None else s.world_seed,
            as_of=datetime.fromisoformat(config.as_of).astimezone(UTC)
            if config.as_of
            else s.world_now,
            drift=config.drift,
            variants=s.world_variants,
        )
        summary = generate_world(
            spec, s.raw_dir, s.ground_truth_dir, attributes=load_attributes(s.attributes_file)
        )
        # the closed loop: our earlier sends and holdouts, played in with their true effect
        feedback = apply_feedback(
            s.raw_dir,
            pd.read_parquet(s.ground_truth_dir / "customer_uplift.parquet"),
            load_feedback(feedback_path(s.data_dir)),
            as_of=summary.as_of,
            seed=spec.seed,
        )
        extra.update({f"feedback_{k}": v for k, v in feedback.items()})
        extra.update(
            customers=spec.customers,
            seed=spec.seed,
            as_of=summary.as_of.isoformat(),
            drift=spec.drift,
            arms=", ".join(spec.arms),
            generation_seconds=round(summary.seconds, 2),
        )
        context.log.info(
            f"generated a world of {spec.customers} customers in {summary.seconds:.1f}s"
        )
    elif s.dataset == "warehouse":
        from orchestration.core.world.warehouse_source import export_raw_schema

        claim_data_dir(s.data_dir, "files")
        extra.update(export_raw_schema(s.raw_duckdb, s.raw_schema, s.raw_dir))
        context.log.info(f"read the raw tables of {s.raw_duckdb} schema {s.raw_schema}")
    else:
        claim_data_dir(s.data_dir, "files")
    require_valid_raw(s.raw_dir, now=s.now(), attributes=s.attributes_file)
    extra["attributes"] = ", ".join(load_attributes(s.attributes_file).names) or "none"
    return extra


def _materializations(s: Settings, extra: dict[str, object]):
    """One materialization per raw table (and the ground truth of a synthetic world)."""
    import pyarrow.parquet as pq

    for table in RAW_TABLES:
        path = raw_path(s.raw_dir, table)
        rows = pq.ParquetFile(path).metadata.num_rows
        yield MaterializeResult(
            asset_key=raw_key(table.name),
            metadata={"rows": rows, "file": MetadataValue.path(str(path)), **extra},
            data_version=DataVersion(_file_digest(path)),
        )
    truth = s.ground_truth_dir / "customer_uplift.parquet"
    if s.dataset == "synthetic" and truth.exists():
        yield MaterializeResult(
            asset_key=GROUND_TRUTH_KEY,
            metadata={
                "rows": pq.ParquetFile(truth).metadata.num_rows,
                "file": MetadataValue.path(str(truth)),
            },
        )


def _freshness_check(table: str):
    @asset_check(
        asset=raw_key(table),
        name="fresh_within_window",
        blocking=True,
        description=(
            f"The newest row of raw {table} is within the freshness window "
            "(CAMPAIGN_RAW_FRESHNESS_HOURS). Stale data blocks every send."
        ),
    )
    def check(settings: CampaignSettings) -> AssetCheckResult:
        s = settings.get()
        result = measure_freshness(s.raw_dir, table, s.thresholds.raw_freshness_hours, now=s.now())
        lag = result.lag_hours
        return AssetCheckResult(
            passed=result.is_fresh,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"newest {table} row is {lag:.1f} h old (window {result.window_hours:g} h)"
                if lag is not None
                else f"raw {table} has no rows"
            ),
            metadata={
                "newest_row_at": result.newest.isoformat() if result.newest else "none",
                "lag_hours": round(lag, 2) if lag is not None else -1.0,
                "threshold_hours": result.window_hours,
                "measured_at": result.measured_at.isoformat(),
            },
        )

    check.__name__ = f"{table}_fresh_within_window"
    return check


raw_freshness_checks = [_freshness_check(t) for t in ACTIVITY_TABLES]


def _safety_check(table: str):
    @asset_check(
        asset=raw_key(table),
        name="safety_tables_only_grow",
        blocking=True,
        description=(
            f"Every {'suppression' if table == 'suppressions' else 'opt-out'} of the last "
            f"release is still in raw {table}, or lifted by an explicit event (a later opt-in; "
            "a row in suppression_lifts). A missing one blocks every send "
            "(CAMPAIGN_SAFETY_MAX_SHRINK_SHARE: the share that may disappear, default 0)."
        ),
    )
    def check(settings: CampaignSettings) -> AssetCheckResult:
        from orchestration.core.world import safety_tables

        s = settings.get()
        path = safety_tables.fingerprint_path(s.gateway_dir)
        current = safety_tables.fingerprint(s.raw_dir, tables=(table,))
        verdict = safety_tables.compare(
            safety_tables.load(path),
            current,
            max_shrink_share=s.thresholds.safety_max_shrink_share,
            tables=(table,),
        ).tables[table]
        return AssetCheckResult(
            passed=verdict.passed,
            severity=AssetCheckSeverity.ERROR,
            description=verdict.message,
            metadata={**verdict.as_metadata(), "fingerprint": MetadataValue.path(str(path))},
        )

    check.__name__ = f"{table}_safety_tables_only_grow"
    return check


# definitions.py lists them with the freshness checks: blocking, so upstream of the release.
safety_table_checks = [_safety_check(t) for t in SAFETY_TABLES]


def _attribute_check(name: str, description: str):
    @asset_check(
        asset=raw_key("customer_attributes"),
        name=f"attribute_{name}_has_values",
        blocking=False,
        description=(
            f"Declared attribute {name!r} ({description}) has a value in the latest "
            "customer_attributes row of at least one customer (a declared attribute without any "
            "is almost always a mapping mistake). Warns only; evidence: the share of customers "
            "covered and the values seen. One such check per attribute of config/attributes.yaml."
        ),
    )
    def check(settings: CampaignSettings) -> AssetCheckResult:
        from orchestration.core.world.attribute_coverage import attribute_coverage
        from orchestration.core.world.attributes import load_attributes

        s = settings.get()
        attribute = load_attributes(s.attributes_file).get(name)
        if attribute is None:
            return AssetCheckResult(
                passed=False,
                severity=AssetCheckSeverity.WARN,
                description=f"{name!r} is no longer declared in {s.attributes_file}; reload",
            )
        cov = attribute_coverage(s.raw_dir, attribute)
        evidence = (
            {"values": ", ".join(f"{v}: {n:,}" for v, n in cov.values.items()) or "none"}
            if attribute.type != "numeric"
            else {
                "min": cov.low if cov.low is not None else "none",
                "max": cov.high if cov.high is not None else "none",
            }
        )
        return AssetCheckResult(
            passed=cov.has_values,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"{cov.share:.1%} of {cov.customers:,} customers have a known {name}"
                if cov.has_values
                else f"no customer has a value for {name}: check the export's column mapping"
            ),
            metadata={
                "customers": cov.customers,
                "customers_with_value": cov.customers_with_value,
                "share": round(cov.share, 4),
                **evidence,
            },
        )

    check.__name__ = f"attribute_{name}_has_values"
    return check


def attribute_checks() -> list:
    """One coverage check per attribute declared in the settings' attribute file (read when the
    definitions load): declaring or removing an attribute changes the asset graph (and its
    reviewed snapshot)."""
    from orchestration.core.world.attributes import load_attributes

    declaration = load_attributes(Settings.from_env().attributes_file)
    return [_attribute_check(a.name, a.description) for a in declaration.attributes]
