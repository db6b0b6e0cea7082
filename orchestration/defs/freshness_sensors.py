"""Freshness watched without a run: stale data pages someone even when no pipeline run starts.

The run checks (``fresh_within_window`` on raw orders and engagement events, ``online_store_fresh``)
only speak when a run evaluates them. ``freshness_watch`` measures the same things itself every
``CAMPAIGN_FRESHNESS_SENSOR_MINUTES`` (default 15) and feeds the shared incident book through
``orchestration.core.observability.alerting.evaluate.notify_freshness``: one alert when a source
goes stale (``sensor:freshness/raw/<table>``, ``sensor:freshness/online``, distinct from the run
checks' keys), nothing while it stays stale, a recovery notice when it is fresh again.

It never starts a run. What cannot be measured yet (no raw file, an online store never
materialized in this instance or without the customer export) is skipped with a reason and
raises no alert; its incident, if any, stays as it is.
"""

from __future__ import annotations

from dagster import AssetKey, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from orchestration.core.observability.alerting.evaluate import (
    DEFAULT_UI_URL,
    FreshnessFacts,
    OnlineFreshnessFact,
    RawFreshnessFact,
    notify_freshness,
)
from orchestration.core.world.contract import ACTIVITY_TABLES, raw_path
from orchestration.core.world.freshness import measure_freshness
from orchestration.settings import Settings

ONLINE_ASSET = AssetKey("online_features")
SENSOR_NAME = "freshness_watch"


def _raw_facts(s: Settings, skipped: list[str]) -> list[RawFreshnessFact]:
    facts = []
    for table in ACTIVITY_TABLES:
        if not raw_path(s.raw_dir, table).exists():
            skipped.append(f"raw {table}: no file yet")
            continue
        result = measure_freshness(s.raw_dir, table, s.thresholds.raw_freshness_hours, now=s.now())
        facts.append(
            RawFreshnessFact(
                table=table,
                newest_at=result.newest.isoformat() if result.newest else None,
                lag_hours=result.lag_hours,
                window_hours=result.window_hours,
            )
        )
    return facts


def _online_fact(
    context: SensorEvaluationContext, s: Settings, skipped: list[str]
) -> OnlineFreshnessFact | None:
    from orchestration.core.world.warehouse import open_warehouse

    warehouse = open_warehouse(s)
    if context.instance.get_latest_materialization_event(ONLINE_ASSET) is None:
        skipped.append("online store: never materialized in this instance")
        return None
    if not warehouse.has_table("dim_customers"):
        skipped.append("online store: dim_customers not built in the warehouse")
        return None
    from orchestration.core.features.online_freshness import measure_online_freshness

    try:
        customers = warehouse.read_table("dim_customers", columns=["customer_id"])
        result = measure_online_freshness(
            s, customers["customer_id"].to_numpy(), s.thresholds.online_freshness_hours, now=s.now()
        )
    except Exception as exc:  # an unreadable store is the run check's to judge, not a page
        context.log.warning(f"online freshness not measured: {type(exc).__name__}: {exc}")
        skipped.append(f"online store: not readable ({type(exc).__name__})")
        return None
    return OnlineFreshnessFact(
        sampled=result.sampled,
        stale=result.stale,
        missing=result.missing,
        oldest_age_hours=result.oldest_age_hours,
        window_hours=result.window_hours,
        stale_share_threshold=s.thresholds.online_stale_share,
    )


def build_freshness_sensor(minutes: int | None = None):
    """The sensor, ticking every ``minutes`` (default: the settings' freshness_sensor_minutes)."""
    interval = minutes if minutes is not None else Settings.from_env().freshness_sensor_minutes

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=int(interval) * 60,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Every {interval} min (CAMPAIGN_FRESHNESS_SENSOR_MINUTES), without a run: raw "
            "orders/engagement events and the online store measured against their freshness "
            "windows; stale data alerts once through the incident book, a recovery notice when "
            "fresh again. Never starts a run."
        ),
    )
    def freshness_watch(context: SensorEvaluationContext):
        s = Settings.from_env()
        skipped: list[str] = []
        facts = FreshnessFacts(raw=_raw_facts(s, skipped), online=_online_fact(context, s, skipped))
        if not facts.raw and facts.online is None:
            return SkipReason("nothing to measure yet: " + "; ".join(skipped))
        report = notify_freshness(
            facts, s.data_dir, s.alert_env, ui_url=s.dagster_ui_url or DEFAULT_UI_URL
        )
        for alert in report.sent:
            context.log.info(f"alert -> {report.sink}: {alert.summary()}")
        if report.undelivered:
            raise RuntimeError(
                f"{len(report.undelivered)} alert(s) not delivered: "
                + "; ".join(f"{k}: {e}" for k, e in report.undelivered.items())
            )
        stale = [f.table for f in facts.raw if not f.fresh]
        if facts.online is not None and not facts.online.fresh:
            stale.append("online store")
        measured = [f"raw {f.table}" for f in facts.raw] + (
            ["online store"] if facts.online else []
        )
        return SkipReason(
            f"measured {', '.join(measured)}; stale: {', '.join(stale) or 'none'}; "
            f"{len(report.sent)} alert(s) sent via {report.sink}"
            + (f"; skipped: {'; '.join(skipped)}" if skipped else "")
        )

    return freshness_watch


freshness_watch = build_freshness_sensor()
