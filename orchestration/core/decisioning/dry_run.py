"""Dry runs: what a campaign change or a policy change would do, against the last live run.

Uses the latest scores, customers and ledger on disk (no retraining, nothing sent, nothing
written): evaluates the campaigns with the change and diffs each one's recipients against its
last live decisions: +N / -M recipients, by reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from orchestration.core.decisioning.campaigns import Campaign, load_campaign_file, load_campaigns
from orchestration.core.decisioning.canary import shares_for_run
from orchestration.core.decisioning.decide import decide_campaigns
from orchestration.core.decisioning.decision_store import (
    RecipientDiff,
    diff_recipients,
    last_live_decisions,
)
from orchestration.core.decisioning.inputs import decision_inputs, scores_path
from orchestration.core.decisioning.policy import load_policy
from orchestration.core.world.warehouse import open_warehouse
from orchestration.settings import Settings


class DryRunError(RuntimeError):
    """The dry run cannot be computed (say what is missing and how to get it)."""


@dataclass(frozen=True)
class DryRunResult:
    policy_version: str
    diffs: dict[str, RecipientDiff]
    recipients: dict[str, int]
    errors: dict[str, str]
    # every evaluated campaign's rows (run_id "dry-run"), as the live run would have written them
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the live runs diffed against, whose sends were left out of the contact history
    compared_runs: frozenset[str] = frozenset()


def dry_run(
    settings: Settings,
    campaign_file: Path | None = None,
    policy_file: Path | None = None,
    decided_at: datetime | None = None,
) -> DryRunResult:
    """Evaluate the current campaigns, with ``campaign_file`` added or replacing the campaign of
    the same name, under ``policy_file`` (default: the current policy)."""
    if campaign_file is not None and load_campaign_file(campaign_file).is_triggered:
        raise DryRunError(
            f"{campaign_file}: the campaign has a trigger: it is decided on its event only"
            " (POST /v1/events), so a batch dry run has no audience to show"
        )
    warehouse = open_warehouse(settings)
    if not warehouse.has_table("dim_customers"):
        raise DryRunError(
            f"{warehouse.describe('dim_customers')} is missing: run the pipeline once "
            "(`make run`) before a dry run"
        )
    if not scores_path(settings).exists():
        raise DryRunError(
            f"{scores_path(settings)} is missing: run the pipeline once (`make run`) before a dry run"
        )
    campaigns: dict[str, Campaign] = dict(load_campaigns(settings.campaigns_dir).campaigns)
    changed: set[str] = set(campaigns)
    if campaign_file is not None:
        campaign = load_campaign_file(campaign_file)  # raises with file and field on bad input
        campaigns[campaign.name] = campaign.model_copy(update={"dry_run": False, "enabled": True})
        changed = {campaign.name}
    policy = load_policy(policy_file or settings.policy_file)
    decided_at = decided_at or settings.now()
    previous = {name: last_live_decisions(settings.decisions_dir, name) for name in changed}
    previous_runs = {str(p["run_id"].iloc[0]) for p in previous.values() if len(p)}
    # The live run's inputs (cap-window history), except that the sends made by the runs we
    # compare against did not exist when those runs decided: like with like, they do not count
    # against caps or the daily limit here either.
    inputs = decision_inputs(settings, policy.policy, decided_at, exclude_runs=previous_runs)
    live = sorted(
        (c for c in campaigns.values() if not c.dry_run or c.name in changed), key=lambda c: c.name
    )
    run = decide_campaigns(
        candidates=inputs.candidates,
        scores=inputs.scores,
        campaigns=[c.model_copy(update={"dry_run": False}) for c in live],
        policy=policy,
        contact_history=inputs.contact_history,
        sent_today=inputs.sent_today,
        decided_at=decided_at,
        run_id="dry-run",
        feature_timestamp=None,
        # a tripped canary is off in a dry run too
        canary_shares=shares_for_run(settings, live, inputs.scores),
    )
    diffs: dict[str, RecipientDiff] = {}
    recipients: dict[str, int] = {}
    for name in sorted(changed & set(run.counts)):
        rows = run.decisions[run.decisions["campaign"] == name]
        recipients[name] = int(rows["decision"].isin(["send", "deferred"]).sum())
        diffs[name] = diff_recipients(rows, previous[name])
    return DryRunResult(
        policy_version=policy.version,
        diffs=diffs,
        recipients=recipients,
        errors=run.errors,
        decisions=run.decisions,
        compared_runs=frozenset(previous_runs),
    )
