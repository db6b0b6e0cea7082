"""Four-eyes approvals: a version takes effect only once an identity other than its author has
signed off the exact hash of it.

What needs an approval (``kind``, ``subject``, the hash that identifies the version):

======================  ======================  ==================================================
kind                    subject                 content hash
======================  ======================  ==================================================
``campaign``            the campaign's name     SHA-256 of its YAML file's bytes
``policy``              the policy file's name  SHA-256 of the policy file's bytes
``model``               the registered model    :func:`orchestration.core.model.registry
                                                .model_version_hash` (name, version, run, source)
``kill-switch``         ``sends``               the SENDS_DISABLED file's content and mtime
======================  ======================  ==================================================

Two signed records, both kept (append-only) in ``data/governance/approvals.db`` and both
audited in the hash-chained audit log:

- a **submission** names the author: ``campaign submit campaign <name> --as alice`` signs
  {kind, subject, hash, author, submitted_at} with alice's key (lifting the kill switch submits
  itself: whoever asks for the lift is its author);
- an **approval** by someone else signs {kind, subject, hash, author, approver, approved_at}.

A version counts as approved when a submission of that exact hash verifies under its author's
key and an approval of it verifies under its approver's key, the approver is none of the
identities that submitted that hash, and both identities are still configured. Everything is
re-verified at each use (the release step, the promotion, the lift), so an edited row, a removed
identity or a forged signature stops counting at once. A changed file has a new hash: nothing
approved it yet.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestration.core.governance.identities import GovernanceError, Identities
from orchestration.core.observability.audit import APPROVE, APPROVE_REFUSED, SUBMIT, AuditLog

CAMPAIGN = "campaign"
POLICY = "policy"
MODEL = "model"
KILL_SWITCH = "kill-switch"
KINDS = (CAMPAIGN, POLICY, MODEL, KILL_SWITCH)
KILL_SWITCH_SUBJECT = "sends"

SCHEMA = """
create table if not exists submissions (
    id integer primary key,
    kind text not null,
    subject text not null,
    content_hash text not null,
    author text not null,
    submitted_at text not null,
    signature text not null
);
create table if not exists approvals (
    id integer primary key,
    kind text not null,
    subject text not null,
    content_hash text not null,
    author text not null,
    approver text not null,
    approved_at text not null,
    signature text not null
);
create index if not exists submissions_by_version on submissions (kind, subject, content_hash);
create index if not exists approvals_by_version on approvals (kind, subject, content_hash);
create trigger if not exists submissions_no_update before update on submissions
begin select raise(abort, 'submissions are append-only'); end;
create trigger if not exists approvals_no_update before update on approvals
begin select raise(abort, 'approvals are append-only'); end;
"""


def _canonical(body: Mapping[str, str]) -> bytes:
    return json.dumps(dict(body), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Submission:
    kind: str
    subject: str
    content_hash: str
    author: str
    submitted_at: str
    signature: str = ""

    def payload(self) -> bytes:
        body = asdict(self)
        body.pop("signature")
        return _canonical({"action": "submit", **body})


@dataclass(frozen=True)
class Approval:
    kind: str
    subject: str
    content_hash: str
    author: str
    approver: str
    approved_at: str
    signature: str = ""

    def payload(self) -> bytes:
        body = asdict(self)
        body.pop("signature")
        return _canonical({"action": "approve", **body})


@dataclass(frozen=True)
class ApprovalStatus:
    """Whether one version may take effect, and why (or why not)."""

    approved: bool
    reason: str
    approval: Approval | None = None


def _without_id(row: sqlite3.Row) -> dict[str, str]:
    values = dict(row)
    values.pop("id", None)
    return values


class ApprovalStore:
    """Submissions and approvals, one SQLite file; rows are only ever appended."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60)
        con.row_factory = sqlite3.Row
        try:
            with con:
                yield con
        finally:
            con.close()

    def add_submission(self, s: Submission) -> None:
        with self._connect() as con:
            con.execute(
                "insert into submissions (kind, subject, content_hash, author, submitted_at,"
                " signature) values (?, ?, ?, ?, ?, ?)",
                (s.kind, s.subject, s.content_hash, s.author, s.submitted_at, s.signature),
            )

    def add_approval(self, a: Approval) -> None:
        with self._connect() as con:
            con.execute(
                "insert into approvals (kind, subject, content_hash, author, approver,"
                " approved_at, signature) values (?, ?, ?, ?, ?, ?, ?)",
                (
                    a.kind,
                    a.subject,
                    a.content_hash,
                    a.author,
                    a.approver,
                    a.approved_at,
                    a.signature,
                ),
            )

    def submissions(self, kind: str, subject: str, content_hash: str) -> list[Submission]:
        with self._connect() as con:
            rows = con.execute(
                "select * from submissions where kind = ? and subject = ? and content_hash = ?"
                " order by id",
                (kind, subject, content_hash),
            ).fetchall()
        return [Submission(**_without_id(r)) for r in rows]

    def approvals(
        self, kind: str | None = None, subject: str | None = None, content_hash: str | None = None
    ) -> list[Approval]:
        """Approvals in the order they were made, optionally of one kind/subject/hash."""
        where, args = [], []
        for column, value in (("kind", kind), ("subject", subject), ("content_hash", content_hash)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        query = "select * from approvals" + (f" where {' and '.join(where)}" if where else "")
        with self._connect() as con:
            rows = con.execute(query + " order by id", args).fetchall()
        return [Approval(**_without_id(r)) for r in rows]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Governance:
    """Submit, approve and check versions against the configured identities."""

    def __init__(
        self,
        store: ApprovalStore,
        identities: Identities,
        audit: AuditLog | None = None,
        clock: Callable[[], str] = _now,
    ) -> None:
        self.store = store
        self.identities = identities
        self.audit = audit
        self.clock = clock

    # --- writing ---------------------------------------------------------------------------
    def submit(self, kind: str, subject: str, content_hash: str, author: str) -> Submission:
        """Record ``author`` as the author of this version, signed with the author's key."""
        _known_kind(kind)
        identity = self.identities.get(author)
        unsigned = Submission(kind, subject, content_hash, identity.name, self.clock())
        submission = Submission(
            **{**asdict(unsigned), "signature": identity.sign(unsigned.payload())}
        )
        self.store.add_submission(submission)
        self._audit(identity.name, SUBMIT, submission.kind, subject, content_hash, {})
        return submission

    def approve(
        self,
        kind: str,
        subject: str,
        content_hash: str,
        approver: str,
        current_hash: str | None = None,
    ) -> Approval:
        """Sign off this exact version as ``approver``.

        Refused (``GovernanceError``, one line) for an unknown approver, an approver without a
        key, a hash that is not the version about to take effect (``current_hash``), a version
        nobody submitted, and an approver who submitted it (self-approval).
        """
        try:
            return self._approve(kind, subject, content_hash, approver, current_hash)
        except GovernanceError as refusal:
            self._audit(
                approver, APPROVE_REFUSED, kind, subject, content_hash, {"reason": str(refusal)}
            )
            raise

    def _approve(self, kind, subject, content_hash, approver, current_hash) -> Approval:
        _known_kind(kind)
        identity = self.identities.get(approver)
        if current_hash is not None and content_hash != current_hash:
            raise GovernanceError(
                f"hash mismatch: {kind} {subject} is now {current_hash}, not {content_hash}; "
                "review the current version and approve its hash"
            )
        authors = self._verified_authors(kind, subject, content_hash)
        if not authors:
            raise GovernanceError(
                f"{kind} {subject} {content_hash[:16]} was never submitted (or its submission "
                f"does not verify): its author runs `campaign submit {kind} ...` first"
            )
        if identity.name in authors:
            raise GovernanceError(
                f"self-approval refused: {identity.name} submitted {kind} {subject} "
                f"{content_hash[:16]}; another identity must approve it"
            )
        unsigned = Approval(kind, subject, content_hash, authors[0], identity.name, self.clock())
        approval = Approval(**{**asdict(unsigned), "signature": identity.sign(unsigned.payload())})
        self.store.add_approval(approval)
        self._audit(
            identity.name, APPROVE, kind, subject, content_hash, {"author": approval.author}
        )
        return approval

    def _audit(self, actor, action, kind, subject, content_hash, extra) -> None:
        if self.audit is not None:
            details = {"kind": kind, "content_hash": content_hash, **extra}
            self.audit.append(actor, action, f"{kind}:{subject}", details)

    # --- checking ----------------------------------------------------------------------------
    def _verified_authors(self, kind: str, subject: str, content_hash: str) -> list[str]:
        authors = []
        for s in self.store.submissions(kind, subject, content_hash):
            identity = self.identities.by_name.get(s.author)
            if identity is not None and identity.verify(s.payload(), s.signature):
                authors.append(s.author)
        return list(dict.fromkeys(authors))

    def requesters(self, kind: str, subject: str, content_hash: str) -> list[str]:
        """The identities whose submission of this version verifies (its authors)."""
        return self._verified_authors(kind, subject, content_hash)

    def approval_is_valid(self, approval: Approval) -> tuple[bool, str]:
        """Whether an approval counts (signatures, identities, four eyes), and why not."""
        identity = self.identities.by_name.get(approval.approver)
        if identity is None:
            return False, f"approver {approval.approver} is no longer configured"
        if not identity.can_verify():
            return False, f"no key to verify {approval.approver}'s signature here"
        if not identity.verify(approval.payload(), approval.signature):
            return False, f"{approval.approver}'s signature does not verify (forged or edited)"
        authors = self._verified_authors(approval.kind, approval.subject, approval.content_hash)
        if approval.author not in authors:
            return False, f"no verified submission by its author {approval.author}"
        if approval.approver in authors:
            return False, f"{approval.approver} also submitted it (self-approval)"
        return True, "valid"

    def status(self, kind: str, subject: str, content_hash: str) -> ApprovalStatus:
        """Is this exact version approved? The reason names what to do when it is not."""
        problems = []
        for approval in reversed(self.store.approvals(kind, subject, content_hash)):
            valid, why = self.approval_is_valid(approval)
            if valid:
                return ApprovalStatus(
                    True, f"approved by {approval.approver} at {approval.approved_at}", approval
                )
            problems.append(why)
        authors = self._verified_authors(kind, subject, content_hash)
        if not authors:
            what = (
                f"not submitted: `campaign submit {kind} {subject} --as <author>`"
                if kind in (CAMPAIGN, POLICY, MODEL)
                else "no lift was requested"
            )
            return ApprovalStatus(False, f"{kind} {subject} {content_hash[:12]} {what}")
        ignored = f" (ignored: {'; '.join(problems)})" if problems else ""
        return ApprovalStatus(
            False,
            f"{kind} {subject} {content_hash[:12]} submitted by {', '.join(authors)}, awaiting "
            f"approval by another identity{ignored}",
        )


def _known_kind(kind: str) -> None:
    if kind not in KINDS:
        raise GovernanceError(f"unknown approval kind {kind!r}: expected one of {', '.join(KINDS)}")


def file_hash(path: Path) -> str:
    """The content hash an approval of a campaign or policy file names: SHA-256 of its bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class ReleaseHolds:
    """What a release must hold back for want of an approval."""

    campaigns: dict[str, str]  # campaign -> why
    files: tuple[str, ...]  # the held campaigns' file names


def release_holds(
    governance: Governance,
    campaign_sources: Mapping[str, Path],
    policy_file: Path,
    decided_policy_versions: Iterable[str] = (),
) -> ReleaseHolds:
    """The campaigns a release must hold, each with why: its file's current hash is not
    approved, or the policy file's is not (then every campaign waits), or the policy changed
    since the run decided (its decisions name another policy version)."""
    policy_hash = file_hash(policy_file)
    policy = governance.status(POLICY, Path(policy_file).name, policy_hash)
    policy_reasons = [] if policy.approved else [policy.reason]
    stale = sorted(v for v in set(decided_policy_versions) if not policy_hash.startswith(v))
    if stale:
        policy_reasons.append(
            f"decided under policy version {', '.join(stale)}, but the policy file is now "
            f"{policy_hash[:12]}: the next run decides under the approved one"
        )
    held: dict[str, str] = {}
    files = []
    for name, path in sorted(campaign_sources.items()):
        status = governance.status(CAMPAIGN, name, file_hash(path))
        reasons = ([] if status.approved else [status.reason]) + policy_reasons
        if reasons:
            held[name] = "; ".join(reasons)
            files.append(Path(path).name)
    return ReleaseHolds(held, tuple(files))


def governance_for(settings) -> Governance:
    """The deployment's governance: its approvals store, identities and audit log."""
    from orchestration.core.governance.identities import load_identities
    from orchestration.core.observability.audit import audit_log_path
    from orchestration.settings import secret

    return Governance(
        ApprovalStore(settings.approvals_db),
        load_identities(settings.approvers_file, secret),
        AuditLog(audit_log_path(settings.data_dir)),
    )
