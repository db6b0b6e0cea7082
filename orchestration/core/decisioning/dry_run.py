"""Dry runs: what a campaign change or a policy change would do, against the last live run.

Uses the latest scores, customers and ledger on disk (no retraining, nothing sent, nothing
written): evaluates the campaigns with the change and diffs each one's recipients against its
last live decisions: +N / -M recipients, by reason.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from orchestration.core.decisioning.policy import load_policy
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.reachability import reachability_flags
from orchestration.settings import Settings


class DryRunError(RuntimeError):
    """The dry run cannot be computed (say what is missing and how to get it)."""


@dataclass(frozen=True)
class DryRunResult:
    policy_version: str
    diffs: dict[str, RecipientDiff]
    recipients: dict[str, int]
    errors: dict[str, str]


def dry_run(
    settings: Settings,
    campaign_file: Path | None = None,
    policy_file: Path | None = None,
    decided_at: datetime | None = None,
) -> DryRunResult:
    """Evaluate the current campaigns, with ``campaign_file`` added or replacing the campaign of
    the same name, under ``policy_file`` (default: the current policy)."""
    scores_path = settings.pipeline_dir / "customer_scores.parquet"
    dim_path = settings.exports_dir / "dim_customers.parquet"
    for path in (scores_path, dim_path):
        if not path.exists():
            raise DryRunError(
                f"{path} is missing: run the pipeline once (`make run`) before a dry run"
            )
    campaigns: dict[str, Campaign] = dict(load_campaigns(settings.campaigns_dir).campaigns)
    changed: set[str] = set(campaigns)
    if campaign_file is not None:
        campaign = load_campaign_file(campaign_file)  # raises with file and field on bad input
        campaigns[campaign.name] = campaign.model_copy(update={"dry_run": False, "enabled": True})
        changed = {campaign.name}
    policy = load_policy(policy_file or settings.policy_file)
    decided_at = decided_at or settings.now()
    candidates = pd.read_parquet(dim_path)
    candidates = candidates.merge(
        reachability_flags(settings.raw_dir, candidates["customer_id"]),
        on="customer_id",
        how="left",
    )
    previous = {name: last_live_decisions(settings.decisions_dir, name) for name in changed}
    previous_runs = {str(p["run_id"].iloc[0]) for p in previous.values() if len(p)}
    # Compare like with like: the sends made by the runs we compare against did not exist when
    # those runs decided, so they do not count against caps here either.
    history = SendLedger(settings.gateway_dir / "ledger.db").frame()
    columns = ["campaign", "customer_id", "channel", "send_date"]
    if len(history):
        history = history.loc[~history["run_id"].isin(previous_runs), columns]
    else:
        history = pd.DataFrame(columns=columns)
    live = [c for c in campaigns.values() if not c.dry_run or c.name in changed]
    scores = pd.read_parquet(scores_path)
    run = decide_campaigns(
        candidates=candidates,
        scores=scores,
        campaigns=[c.model_copy(update={"dry_run": False}) for c in live],
        policy=policy,
        contact_history=history,
        sent_today=history[history["send_date"] == decided_at.date().isoformat()]
        .groupby("campaign")
        .size()
        .to_dict(),
        decided_at=decided_at,
        run_id="dry-run",
        feature_timestamp=None,
        # a tripped canary is off in a dry run too
        canary_shares=shares_for_run(settings, live, scores),
    )
    diffs: dict[str, RecipientDiff] = {}
    recipients: dict[str, int] = {}
    for name in sorted(changed & set(run.counts)):
        rows = run.decisions[run.decisions["campaign"] == name]
        recipients[name] = int(rows["decision"].isin(["send", "deferred"]).sum())
        diffs[name] = diff_recipients(rows, previous[name])
    return DryRunResult(
        policy_version=policy.version, diffs=diffs, recipients=recipients, errors=run.errors
    )
