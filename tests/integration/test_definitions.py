"""The Dagster definitions load, and the asset graph is what we reviewed.

A renamed asset key or a dropped check changes the snapshot below: update it on purpose
(`UPDATE_SNAPSHOT=1 pytest tests/integration/test_definitions.py`) and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions

SNAPSHOT = Path(__file__).with_name("asset_graph_snapshot.json")


@pytest.fixture(scope="module")
def defs():
    from orchestration.definitions import defs

    return defs


def _graph(defs):
    return defs.resolve_asset_graph()


def test_definitions_load(defs):
    Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("campaign_pipeline") is not None


def _is_campaign_audience(key: str) -> bool:
    return key.startswith("audience/")


def test_asset_keys_and_checks_match_the_snapshot(defs):
    """Campaign audiences come from campaigns/ (adding a file adds one): checked separately."""
    graph = _graph(defs)
    current = {
        "assets": sorted(
            k.to_user_string()
            for k in graph.get_all_asset_keys()
            if not _is_campaign_audience(k.to_user_string())
        ),
        "checks": sorted(
            f"{c.asset_key.to_user_string()}:{c.name}"
            for c in graph.asset_check_keys
            if not _is_campaign_audience(c.asset_key.to_user_string())
        ),
    }
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected


def test_every_campaign_file_has_its_audience_asset_with_a_blocking_size_check(defs):
    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.settings import CAMPAIGNS_DIR

    graph = _graph(defs)
    names = set(load_campaigns(CAMPAIGNS_DIR).campaigns)
    audiences = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "audience"}
    assert audiences == names
    for name in names:
        check = next(
            c for c in graph.asset_check_keys if c.asset_key == AssetKey(["audience", name])
        )
        assert graph.get_check_spec(check).blocking


def test_no_dependency_points_at_an_undefined_asset(defs):
    """A typo in deps=[AssetKey(...)] would silently create a placeholder asset. The one external
    asset on purpose is run_health_history (reported by sensors, never materialized by a run)."""
    graph = _graph(defs)
    undefined = [
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if not graph.get(key).is_materializable
    ]
    assert undefined == ["run_health_history"]


def test_every_asset_is_described_owned_and_grouped(defs):
    graph = _graph(defs)
    problems = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.description:
            problems.append(f"{key.to_user_string()}: no description")
        if not node.owners:
            problems.append(f"{key.to_user_string()}: no owner")
        if node.group_name in (None, "default"):
            problems.append(f"{key.to_user_string()}: no group")
    assert problems == []


def _ancestors(graph, key: AssetKey) -> set[AssetKey]:
    ancestors, frontier = set(), [key]
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent not in ancestors:
                ancestors.add(parent)
                frontier.append(parent)
    return ancestors


SEND_GATES = {
    (AssetKey(["raw", "orders"]), "fresh_within_window"),
    (AssetKey(["raw", "engagement_events"]), "fresh_within_window"),
    (AssetKey("feature_snapshot"), "drift_share_below_threshold"),
    (AssetKey("feature_snapshot"), "features_cover_candidates"),
    (AssetKey("online_features"), "online_store_fresh"),
    (AssetKey("model_promotion"), "champion_beats_random"),
    (AssetKey("campaign_decisions"), "audience_compliant"),
}


def test_the_send_gates_are_blocking_and_upstream_of_the_release(defs):
    graph = _graph(defs)
    release = AssetKey("campaign_release")
    ancestors = _ancestors(graph, release)
    blocking = {
        (c.asset_key, c.name) for c in graph.asset_check_keys if graph.get_check_spec(c).blocking
    }
    for asset, name in SEND_GATES:
        assert (asset, name) in blocking, f"{asset.to_user_string()}:{name} is not blocking"
        assert asset in ancestors, f"{asset.to_user_string()} is not upstream of the release"
    for audience in (k for k in graph.get_all_asset_keys() if k.path[0] == "audience"):
        assert audience in ancestors, f"{audience.to_user_string()} is not upstream of the release"
        assert any(
            c.asset_key == audience and graph.get_check_spec(c).blocking
            for c in graph.asset_check_keys
        ), f"{audience.to_user_string()} has no blocking check"
    dbt_error_tests = [
        c for c in graph.asset_check_keys if c.asset_key == AssetKey("dim_customers")
    ]
    assert dbt_error_tests and all(graph.get_check_spec(c).blocking for c in dbt_error_tests)


def test_the_sends_read_no_decisions_only_the_released_ledger(defs):
    """campaign_sends must not load campaign_decisions (a stored output says nothing about its
    run's gates): it depends on the release, which is downstream of every gate."""
    graph = _graph(defs)
    sends = graph.get(AssetKey("campaign_sends"))
    assert AssetKey("campaign_decisions") not in sends.parent_keys
    assert AssetKey("campaign_release") in sends.parent_keys
    assert AssetKey("campaign_release") in _ancestors(graph, AssetKey("campaign_sends"))
