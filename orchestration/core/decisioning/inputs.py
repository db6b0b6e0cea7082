"""The policy engine's inputs, read one way for the live run and for a dry run.

Candidates (``dim_customers`` with the gateway's reachability flags), the scores, the contact
history over the policy's longest cap window (today included) and the sends each campaign already
has today. A dry run passes ``exclude_runs``: the sends of the runs it compares against did not
exist when those runs decided, so they do not count against caps or daily limits there either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.reachability import reachability_flags
from orchestration.core.world.warehouse import open_warehouse
from orchestration.settings import Settings

if TYPE_CHECKING:
    from orchestration.core.decisioning.policy import Policy

HISTORY_COLUMNS = ["campaign", "customer_id", "channel", "send_date"]


@dataclass(frozen=True)
class DecisionInputs:
    candidates: pd.DataFrame  # dim_customers + is_<channel>_reachable
    scores: pd.DataFrame  # customer_id + uplift__<model>@<alias> / version__<model>@<alias>
    contact_history: pd.DataFrame  # HISTORY_COLUMNS: ledger rows of the cap window
    sent_today: dict[str, int]  # campaign -> ledger rows on send_date
    send_date: str  # ISO day of decided_at
    decided_at: datetime


def scores_path(settings: Settings) -> Path:
    return settings.pipeline_dir / "customer_scores.parquet"


def recent_contacts(
    ledger: SendLedger, decided_at: datetime, days: int, exclude_runs: Iterable[str] = ()
) -> pd.DataFrame:
    """Ledger rows (any status) of the last ``days`` days (today included), for caps and the
    daily limit; rows recorded by ``exclude_runs`` left out."""
    frame = ledger.frame()
    if frame.empty:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    excluded = set(exclude_runs)
    if excluded:
        frame = frame[~frame["run_id"].isin(excluded)]
    moment = pd.Timestamp(decided_at)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    first = (moment.normalize() - pd.Timedelta(days=days - 1)).date().isoformat()
    return frame.loc[frame["send_date"] >= first, HISTORY_COLUMNS].reset_index(drop=True)


def decision_inputs(
    settings: Settings,
    policy: Policy,
    decided_at: datetime,
    *,
    scores_file: Path | None = None,
    ledger: SendLedger | None = None,
    exclude_runs: Iterable[str] = (),
) -> DecisionInputs:
    """Everything ``decide_campaigns`` reads besides the campaigns and the policy itself.

    ``scores_file``: default ``<pipeline>/customer_scores.parquet``; ``ledger``: default the
    gateway's ledger under ``settings.gateway_dir``; ``exclude_runs``: run ids whose sends are
    left out of the history and of today's counts (a dry run's compared runs).
    """
    candidates = open_warehouse(settings).read_table("dim_customers")
    reachable = reachability_flags(settings.raw_dir, candidates["customer_id"])  # in their order
    candidates = candidates.assign(
        **{c: reachable[c].to_numpy() for c in reachable.columns if c != "customer_id"}
    )
    scores = pd.read_parquet(scores_file or scores_path(settings))
    ledger = ledger or SendLedger(settings.gateway_dir / "ledger.db")
    history = recent_contacts(ledger, decided_at, policy.longest_cap_window_days, exclude_runs)
    send_date = decided_at.date().isoformat()
    today = history[history["send_date"] == send_date]
    return DecisionInputs(
        candidates=candidates,
        scores=scores,
        contact_history=history,
        sent_today={str(k): int(v) for k, v in today.groupby("campaign").size().items()},
        send_date=send_date,
        decided_at=decided_at,
    )
