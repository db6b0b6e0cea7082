"""Releases: the one door from a run's decisions to the send ledger.

Dagster enforces a blocking check only inside the run that evaluated it, so a stored
``campaign_decisions`` output says nothing about whether its gates passed. A run's decisions
become sendable only through a release: the gate verdict of *that run* (every blocking check
expected in front of the sends was evaluated in the run and passed), recorded with what was
released (checks, model, policy, feature and campaign versions, a digest of the decisions), and
the messages enqueued as due in the same SQLite transaction as the release row. Every dispatch
path claims only due messages of a release that has not been revoked (``SendLedger.claim_due``).

Plain Python: the Dagster shell reads the run's check evaluations and hands them in as facts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

RELEASED = "released"
REVOKED = "revoked"
# Decided, gates passed, but nothing enqueued: a campaign (or the policy) version is not approved
# yet (orchestration.core.governance). The next run after the approval releases it.
AWAITING_APPROVAL = "awaiting_approval"
# The decision values that become messages (``deferred`` ones wait for their not-before time).
SENDABLE = ("send", "deferred")


class ReleaseRefused(RuntimeError):
    """The run's gates do not allow a release: nothing was written to the ledger."""


@dataclass(frozen=True)
class GateResult:
    """One blocking check's evaluation in the run (``passed`` is False for a missing one)."""

    asset: str
    check: str
    passed: bool
    evaluated: bool = True

    @property
    def key(self) -> str:
        return f"{self.asset}:{self.check}"


@dataclass(frozen=True)
class GateVerdict:
    results: tuple[GateResult, ...]

    @property
    def failed(self) -> list[str]:
        return sorted(r.key for r in self.results if r.evaluated and not r.passed)

    @property
    def missing(self) -> list[str]:
        return sorted(r.key for r in self.results if not r.evaluated)

    @property
    def passed(self) -> bool:
        return bool(self.results) and not self.failed and not self.missing

    def explain(self) -> str:
        if self.passed:
            return f"all {len(self.results)} blocking checks of the run passed"
        parts = []
        if self.failed:
            parts.append(f"failed: {', '.join(self.failed)}")
        if self.missing:
            parts.append(f"not evaluated in this run: {', '.join(self.missing)}")
        if not self.results:
            parts.append("no blocking check is expected in front of the sends (misconfigured)")
        return "; ".join(parts)


def gate_verdict(
    expected: Iterable[tuple[str, str]], evaluations: Iterable[tuple[str, str, bool]]
) -> GateVerdict:
    """Judge a run: every ``(asset, check)`` in ``expected`` must have a passing evaluation.

    ``evaluations`` are the run's ``(asset, check, passed)`` facts; a check evaluated more than
    once counts as passed only if its last evaluation passed. An expected check with no
    evaluation (a step skipped, a re-execution of a subset) is missing, which refuses the
    release exactly like a failure: a release needs the evidence of its own run.
    """
    last: dict[tuple[str, str], bool] = {}
    for asset, check, passed in evaluations:
        last[(asset, check)] = bool(passed)
    results = tuple(
        GateResult(asset, check, last.get((asset, check), False), (asset, check) in last)
        for asset, check in sorted(set(expected))
    )
    return GateVerdict(results)


def sendable(decisions: pd.DataFrame, live_campaigns: Iterable[str]) -> pd.DataFrame:
    """The messages a release enqueues: ``send``/``deferred`` rows of live campaigns, with their
    not-before time (quiet hours) and template (a chosen variant's; None: the campaign's), as
    (campaign, customer_id, channel, not_before, template)."""
    live = set(live_campaigns)
    if decisions.empty:
        return pd.DataFrame(
            columns=["campaign", "customer_id", "channel", "not_before", "template"]
        )
    chosen = decisions[decisions["decision"].isin(SENDABLE) & decisions["campaign"].isin(live)]
    messages = chosen[["campaign", "customer_id", "channel"]].copy()
    messages["not_before"] = (
        pd.to_datetime(chosen["deferred_until"], utc=True) if "deferred_until" in chosen else pd.NaT
    )
    messages["template"] = (
        chosen["template"].astype(object).where(chosen["template"].notna(), None)
        if "template" in chosen
        else None
    )
    return messages.sort_values(["campaign", "customer_id", "channel"]).reset_index(drop=True)


def decisions_digest(messages: pd.DataFrame) -> str:
    """SHA-256 over the released messages, order-independent: what exactly was let through
    (a variant's template too; a message without one hashes as before variants existed)."""
    templates = messages["template"] if "template" in messages else [None] * len(messages)
    rows = sorted(
        f"{c}|{int(cid)}|{ch}" + ("" if t is None or pd.isna(t) else f"|{t}")
        for (c, cid, ch), t in zip(
            messages[["campaign", "customer_id", "channel"]].itertuples(index=False),
            templates,
            strict=True,
        )
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def file_hashes(paths: Iterable[Path]) -> dict[str, str]:
    """SHA-256 of each file's bytes by file name (campaign files, the policy file)."""
    return {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in sorted(paths)}


def _distinct(decisions: pd.DataFrame, column: str) -> str:
    if decisions.empty or column not in decisions:
        return ""
    return ", ".join(sorted(decisions[column].dropna().astype(str).unique()))


@dataclass(frozen=True)
class Release:
    """What a run let through, as recorded beside its messages in the ledger."""

    run_id: str
    released_at: str
    send_date: str
    checks: dict[str, bool]
    model_versions: str
    policy_version: str
    feature_version: str
    campaign_files: dict[str, str]
    decisions_digest: str
    messages: int
    campaigns: tuple[str, ...] = field(default_factory=tuple)
    # campaign -> why it was held back (not approved); its messages were not enqueued
    held: dict[str, str] = field(default_factory=dict)
    # the held campaigns' files: their new versions did not go live with this release
    held_files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        """``awaiting_approval`` when approvals held back every campaign that had messages (or
        the policy), else ``released`` (the held campaigns are listed beside it)."""
        return AWAITING_APPROVAL if self.held and not self.messages else RELEASED

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["checks"] = json.dumps(self.checks, sort_keys=True)
        row["campaign_files"] = json.dumps(self.campaign_files, sort_keys=True)
        row["campaigns"] = json.dumps(list(self.campaigns))
        row["held"] = json.dumps(self.held, sort_keys=True)
        row["held_files"] = json.dumps(sorted(self.held_files))
        return row


def build_release(
    *,
    run_id: str,
    released_at: str,
    send_date: str,
    verdict: GateVerdict,
    decisions: pd.DataFrame,
    messages: pd.DataFrame,
    feature_version: str,
    campaign_files: dict[str, str],
    held: dict[str, str] | None = None,
    held_files: Iterable[str] = (),
) -> Release:
    """The release record of a run whose verdict passed; refuses (nothing written) otherwise.

    ``held`` (campaign -> reason) are the campaigns approvals hold back: their messages are
    dropped from ``messages`` here, so the caller enqueues exactly what the release records.
    """
    if not verdict.passed:
        raise ReleaseRefused(f"run {run_id} cannot be released: {verdict.explain()}")
    held = dict(held or {})
    if held and len(messages):
        messages = messages[~messages["campaign"].isin(held)]
    return Release(
        run_id=run_id,
        released_at=released_at,
        send_date=send_date,
        checks={r.key: r.passed for r in verdict.results},
        model_versions=_distinct(decisions, "model_version"),
        policy_version=_distinct(decisions, "policy_version"),
        feature_version=feature_version,
        campaign_files=campaign_files,
        decisions_digest=decisions_digest(messages),
        messages=len(messages),
        campaigns=tuple(sorted(messages["campaign"].unique())) if len(messages) else (),
        held=held,
        held_files=tuple(sorted(held_files)),
    )


def releasable_messages(release: Release, messages: pd.DataFrame) -> pd.DataFrame:
    """The messages a release enqueues: none of a held campaign's."""
    if not release.held or messages.empty:
        return messages
    return messages[~messages["campaign"].isin(release.held)].reset_index(drop=True)
