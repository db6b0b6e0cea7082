"""A dry run of what is already live reproduces the live run's decisions, row for row.

Both read their inputs through orchestration.core.decisioning.inputs; the dry run leaves the
compared run's own sends out of the contact history (they did not exist when it decided).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey

pytestmark = pytest.mark.e2e

KEYS = ["campaign", "customer_id"]
COMPARED = [
    "channel",
    "decision",
    "reason",
    "predicted_uplift",
    "expected_net_value",
    "value_rank",
    "model_version",
    "scored_by",
    "policy_version",
    "deferred_until",
]


def _decisions_file(result) -> Path:
    for event in result.get_asset_materialization_events():
        if event.asset_key == AssetKey("campaign_decisions"):
            return Path(event.materialization.metadata["decisions_file"].value)
    raise AssertionError("campaign_decisions was not materialized")


def _normalized(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[KEYS + COMPARED].copy()
    out["customer_id"] = out["customer_id"].astype("int64")
    out["deferred_until"] = pd.to_datetime(out["deferred_until"], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    for column in ("channel", "decision", "reason", "model_version", "scored_by"):
        out[column] = out[column].astype(object)
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


def _mismatches(live: pd.DataFrame, dry: pd.DataFrame) -> int:
    both = live.merge(dry, on=KEYS, how="outer", suffixes=("_live", "_dry"), indicator=True)
    differs = both["_merge"] != "both"
    for column in COMPARED:
        a, b = both[f"{column}_live"], both[f"{column}_dry"]
        differs |= ~((a == b) | (a.isna() & b.isna()))
    return int(differs.sum())


def _assert_same(live: pd.DataFrame, dry: pd.DataFrame, label: str) -> None:
    live, dry = _normalized(live), _normalized(dry)
    mismatches = _mismatches(live, dry)
    sends = int((live["decision"] == "send").sum())
    print(
        f"dry-run parity ({label}): {len(live)} live rows vs {len(dry)} dry-run rows, "
        f"{mismatches} mismatches ({sends} sends)"
    )
    assert len(live) == len(dry) and mismatches == 0
    pd.testing.assert_frame_equal(live, dry, check_exact=True)


def test_dry_run_of_the_live_campaigns_reproduces_the_live_decisions(world):
    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.core.decisioning.decision_store import last_live_decisions
    from orchestration.core.decisioning.dry_run import dry_run
    from orchestration.core.decisioning.inputs import decision_inputs
    from orchestration.core.decisioning.policy import load_policy
    from orchestration.core.delivery.ledger import SendLedger

    s, first = world["settings"], world["first"]
    assert first.success
    written = pd.read_parquet(_decisions_file(first))
    live = written[~written["dry_run"]]
    names = sorted(live["campaign"].unique())
    assert names
    # precondition: the pipeline's files on disk (scores, customers, latest live decisions) are
    # still this run's
    for name in names:
        assert set(last_live_decisions(s.decisions_dir, name)["run_id"]) == {first.run_id}
    decided_at = pd.Timestamp(live["decided_at"].iloc[0]).to_pydatetime()

    # the run's own sends are in the ledger: counted, they would shut its recipients out
    ledger = SendLedger(s.gateway_dir / "ledger.db").frame()
    own = ledger[ledger["run_id"] == first.run_id]
    assert len(own) > 0
    unexcluded = decision_inputs(s, load_policy(s.policy_file).policy, decided_at)
    assert sum(unexcluded.sent_today.values()) >= len(own)

    decision_files = sorted(s.decisions_dir.rglob("*.parquet"))
    loaded = load_campaigns(s.campaigns_dir)
    for name in names:
        result = dry_run(s, campaign_file=loaded.sources[name], decided_at=decided_at)
        assert result.compared_runs == {first.run_id}
        assert (result.diffs[name].added, result.diffs[name].removed) == (0, 0)
        dry = result.decisions[result.decisions["campaign"] == name]
        _assert_same(live[live["campaign"] == name], dry, f"campaign {name}")

    # the current policy as a "policy change": every live campaign unchanged. (A policy-only dry
    # run evaluates dry-run campaigns as live ones, competing for customers: only comparable
    # while there are none.)
    if not any(c.dry_run for c in loaded.campaigns.values()):
        result = dry_run(s, policy_file=s.policy_file, decided_at=decided_at)
        assert result.errors == {}
        _assert_same(live, result.decisions[result.decisions["campaign"].isin(names)], "policy")
    # nothing written by the dry runs
    assert sorted(s.decisions_dir.rglob("*.parquet")) == decision_files
