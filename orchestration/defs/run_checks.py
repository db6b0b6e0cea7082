"""What a run's gates said: the blocking checks in front of an asset, and the run's evaluations.

Shared by the defs modules (like ``run_artifacts``, this is not an asset module): the release
reads it to decide whether a run may send.
"""

from __future__ import annotations

from dagster import AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph


def ancestors(graph: AssetGraph, key: AssetKey) -> set[AssetKey]:
    seen: set[AssetKey] = set()
    stack = [key]
    while stack:
        for parent in graph.get(stack.pop()).parent_keys:
            if parent not in seen and graph.has(parent):
                seen.add(parent)
                stack.append(parent)
    return seen


def whole_graph(context) -> AssetGraph:
    """The asset graph of the whole code location, even in a run of a subset (a re-execution of
    one asset from the UI), whose job-scoped graph lacks the upstream assets and their checks:
    the gates in front of an asset do not shrink because fewer assets were selected."""
    graph = context.job_def.asset_layer.asset_graph
    # JobScopedAssetGraph keeps the graph it was cut from (Dagster 1.13; no public accessor).
    return getattr(graph, "_source_asset_graph", graph)


def blocking_checks_before(graph: AssetGraph, key: AssetKey) -> list[tuple[str, str]]:
    """Every blocking check of every asset upstream of ``key``: the gates in front of it."""
    upstream = ancestors(graph, key)
    return sorted(
        (check.asset_key.to_user_string(), check.name)
        for check in graph.asset_check_keys
        if check.asset_key in upstream and graph.get_check_spec(check).blocking
    )


def run_check_evaluations(instance: DagsterInstance, run_id: str) -> list[tuple[str, str, bool]]:
    """``(asset, check, ok)`` for each check evaluated in the run, in order. A failure of WARN
    severity does not block (as in Dagster's own blocking semantics), so it counts as ok."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    facts = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        evaluation = event.event_specific_data
        ok = evaluation.passed or evaluation.severity == AssetCheckSeverity.WARN
        facts.append((evaluation.asset_key.to_user_string(), evaluation.check_name, bool(ok)))
    return facts
