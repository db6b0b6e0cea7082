"""`campaign submit | approve | approvals | kill-switch`: four-eyes governance on the command
line (a thin shell over ``orchestration.core.governance``; ``cli.py`` mounts these commands).

Every refusal is one line on stderr and exit code 1: an unknown approver, an identity without a
key, a self-approval, a hash that is not the version about to take effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestration.settings import Settings

console = Console()
_error_console = Console(stderr=True, soft_wrap=True, highlight=False)

AS_IDENTITY = typer.Option("--as", help="Your identity in the approvers file (it signs).")
HASH = typer.Option("--hash", help="The exact content hash you reviewed (64 hex).")

submit_app = typer.Typer(
    help="Record yourself as the author of a version (signed), so another identity can approve it.",
    no_args_is_help=True,
)
approve_app = typer.Typer(
    help="Approve the exact hash of a version someone else submitted (four eyes).",
    no_args_is_help=True,
)
kill_switch_app = typer.Typer(
    help="The kill switch file: on stops every dispatch; lifting it may need an approval.",
    no_args_is_help=True,
)


def _error(message: str) -> NoReturn:
    _error_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    from orchestration.core.governance.identities import GovernanceError
    from orchestration.core.model.promotion import OverrideNotApproved

    try:
        yield
    except (GovernanceError, OverrideNotApproved) as exc:
        _error(str(exc))


def _governance(s: Settings):
    from orchestration.core.governance.approvals import governance_for

    return governance_for(s)


def _campaign_source(s: Settings, name: str) -> Path:
    from orchestration.core.decisioning.campaigns import load_campaigns

    sources = load_campaigns(s.campaigns_dir).sources
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none"
        _error(f"unknown campaign {name!r} in {s.campaigns_dir} (known: {known})")
    return sources[name]


def _model_hash(s: Settings, name: str, version: str) -> str:
    from mlflow.exceptions import MlflowException

    from orchestration.core.model.registry import model_version_hash

    try:
        return model_version_hash(s, version, name)
    except MlflowException:
        _error(f"model {name} has no version {version!r} in the registry ({s.mlflow_tracking_uri})")


def _submitted(kind: str, subject: str, content_hash: str, author: str, how: str) -> None:
    console.print(
        f"{kind} {subject} {content_hash} submitted by {author}; another identity approves it "
        f"with: campaign approve {how} --as <not {author}>",
        highlight=False,
        soft_wrap=True,
    )


# --- submit -----------------------------------------------------------------------------------


@submit_app.command("campaign")
def submit_campaign(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    identity: Annotated[str, AS_IDENTITY],
) -> None:
    """Submit the campaign file as it is now (its SHA-256) as your version."""
    from orchestration.core.governance.approvals import CAMPAIGN, file_hash

    s = Settings.from_env()
    content_hash = file_hash(_campaign_source(s, name))
    with _one_line_errors():
        done = _governance(s).submit(CAMPAIGN, name, content_hash, identity)
    _submitted(CAMPAIGN, name, content_hash, done.author, f"campaign {name} --hash {content_hash}")


@submit_app.command("policy")
def submit_policy(identity: Annotated[str, AS_IDENTITY]) -> None:
    """Submit the policy file as it is now (its SHA-256) as your version."""
    from orchestration.core.governance.approvals import POLICY, file_hash

    s = Settings.from_env()
    content_hash = file_hash(s.policy_file)
    with _one_line_errors():
        done = _governance(s).submit(POLICY, s.policy_file.name, content_hash, identity)
    _submitted(
        POLICY, s.policy_file.name, content_hash, done.author, f"policy --hash {content_hash}"
    )


@submit_app.command("model")
def submit_model(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[str, typer.Option(help="The version a manual promotion will move onto.")],
    identity: Annotated[str, AS_IDENTITY],
) -> None:
    """Submit a model version for a manual promotion (CAMPAIGN_PROMOTE_OVERRIDE)."""
    from orchestration.core.governance.approvals import MODEL

    s = Settings.from_env()
    content_hash = _model_hash(s, name, version)
    with _one_line_errors():
        done = _governance(s).submit(MODEL, name, content_hash, identity)
    _submitted(MODEL, name, content_hash, done.author, f"model {name} --version {version}")


# --- approve ----------------------------------------------------------------------------------


def _approved(approval) -> None:
    console.print(
        f"approved: {approval.kind} {approval.subject} {approval.content_hash} "
        f"(author {approval.author}, approver {approval.approver}, {approval.approved_at})",
        highlight=False,
        soft_wrap=True,
    )


@approve_app.command("campaign")
def approve_campaign(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    content_hash: Annotated[str, HASH],
    identity: Annotated[str, AS_IDENTITY],
) -> None:
    """Approve a campaign file version; refused unless it is the file's current hash."""
    from orchestration.core.governance.approvals import CAMPAIGN, file_hash

    s = Settings.from_env()
    current = file_hash(_campaign_source(s, name))
    with _one_line_errors():
        _approved(_governance(s).approve(CAMPAIGN, name, content_hash.strip(), identity, current))


@approve_app.command("policy")
def approve_policy(
    content_hash: Annotated[str, HASH],
    identity: Annotated[str, AS_IDENTITY],
) -> None:
    """Approve the policy file version; refused unless it is the file's current hash."""
    from orchestration.core.governance.approvals import POLICY, file_hash

    s = Settings.from_env()
    current = file_hash(s.policy_file)
    with _one_line_errors():
        _approved(
            _governance(s).approve(
                POLICY, s.policy_file.name, content_hash.strip(), identity, current
            )
        )


@approve_app.command("model")
def approve_model(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[str, typer.Option(help="The version a manual promotion moves onto.")],
    identity: Annotated[str, AS_IDENTITY],
    content_hash: Annotated[str, typer.Option("--hash", help="Optional: must match.")] = "",
) -> None:
    """Approve a manual promotion onto this model version."""
    from orchestration.core.governance.approvals import MODEL

    s = Settings.from_env()
    current = _model_hash(s, name, version)
    with _one_line_errors():
        _approved(
            _governance(s).approve(MODEL, name, content_hash.strip() or current, identity, current)
        )


@approve_app.command("kill-switch")
def approve_kill_switch(
    content_hash: Annotated[str, HASH],
    identity: Annotated[str, AS_IDENTITY],
) -> None:
    """Approve lifting the kill switch as it is engaged now (the hash `kill-switch off` named)."""
    from orchestration.core.delivery.kill_switch import kill_switch_hash
    from orchestration.core.governance.approvals import KILL_SWITCH, KILL_SWITCH_SUBJECT

    s = Settings.from_env()
    current = kill_switch_hash(s.gateway_dir)
    if current is None:
        _error("the kill switch is not on: there is nothing to approve")
    with _one_line_errors():
        _approved(
            _governance(s).approve(
                KILL_SWITCH, KILL_SWITCH_SUBJECT, content_hash.strip(), identity, current
            )
        )


# --- list -------------------------------------------------------------------------------------


def _current_hashes(s: Settings) -> dict[tuple[str, str], str]:
    """The hash each campaign, the policy and the kill switch has now (models: not listed)."""
    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.core.delivery.kill_switch import kill_switch_hash
    from orchestration.core.governance.approvals import (
        CAMPAIGN,
        KILL_SWITCH,
        KILL_SWITCH_SUBJECT,
        POLICY,
        file_hash,
    )

    current = {
        (CAMPAIGN, name): file_hash(path)
        for name, path in load_campaigns(s.campaigns_dir).sources.items()
    }
    if s.policy_file.exists():
        current[(POLICY, s.policy_file.name)] = file_hash(s.policy_file)
    switch = kill_switch_hash(s.gateway_dir)
    if switch:
        current[(KILL_SWITCH, KILL_SWITCH_SUBJECT)] = switch
    return current


def approvals() -> None:
    """Every approval: kind, subject, hash, author, approver, when, whether it is valid (its
    signatures verify, four eyes) and whether it approves the version in effect now."""
    from orchestration.core.governance.approvals import MODEL

    s = Settings.from_env()
    governance = _governance(s)
    current = _current_hashes(s)
    table = Table(title=f"approvals (oldest first; required: {s.require_approvals})")
    for column in ("kind", "subject", "hash", "author", "approver", "when", "valid?", "current?"):
        table.add_column(column)
    for a in governance.store.approvals():
        valid, why = governance.approval_is_valid(a)
        now = current.get((a.kind, a.subject))
        is_current = "-" if a.kind == MODEL else ("yes" if now == a.content_hash else "no")
        table.add_row(
            a.kind,
            a.subject,
            a.content_hash[:12],
            a.author,
            a.approver,
            a.approved_at[:19],
            "yes" if valid else f"no: {why}",
            is_current,
        )
    console.print(table)


def keygen(
    identity: Annotated[str, typer.Argument(help="The identity the key is for.")],
    out: Annotated[Path, typer.Option(help="Where to write the private key (PEM, mode 600).")],
) -> None:
    """Make an ed25519 key pair: the private key to --out, the approvers-file entry to stdout."""
    from orchestration.core.governance.identities import new_ed25519_key

    if out.exists():
        _error(f"{out} exists: choose another path (a key is never overwritten)")
    public, pem = new_ed25519_key()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600)
    out.write_bytes(pem)
    console.print(
        f"# add to the approvers file (CAMPAIGN_APPROVERS_FILE):\n  {identity}:\n"
        f'    ed25519_public_key: "{public}"\n    ed25519_private_key_file: {out.resolve()}',
        highlight=False,
        markup=False,
    )


# --- kill switch ------------------------------------------------------------------------------


@kill_switch_app.command("on")
def kill_switch_on_command(
    reason: Annotated[str, typer.Option(help="Why (recorded and audited).")],
    identity: Annotated[str, typer.Option("--as", help="Who stops the sends (audited).")],
) -> None:
    """Stop every dispatch now (the file data/gateway/SENDS_DISABLED); anyone may."""
    from orchestration.core.delivery.kill_switch import engage
    from orchestration.core.observability.audit import AuditLog, audit_log_path

    s = Settings.from_env()
    content_hash = engage(s.gateway_dir, identity, reason, AuditLog(audit_log_path(s.data_dir)))
    console.print(f"kill switch on (engagement {content_hash}): nothing is dispatched")


@kill_switch_app.command("off")
def kill_switch_off_command(identity: Annotated[str, AS_IDENTITY]) -> None:
    """Lift the kill switch; with approvals required, only once another identity approved it
    (the first call records your request and prints the hash to approve)."""
    from orchestration.core.delivery.kill_switch import lift

    s = Settings.from_env()
    if s.sends_disabled:
        _error(
            "CAMPAIGN_SENDS_DISABLED is set in this environment: lift it where the deployment "
            "is configured (this command lifts the file switch only)"
        )
    with _one_line_errors():
        note = lift(s.gateway_dir, identity, _governance(s), s.require_approvals)
    console.print(note)


@kill_switch_app.command("status")
def kill_switch_status() -> None:
    """Whether the kill switch is on, and the engagement hash a lift approval names."""
    from orchestration.core.delivery.kill_switch import kill_switch_hash

    s = Settings.from_env()
    content_hash = kill_switch_hash(s.gateway_dir)
    if s.sends_disabled:
        console.print("on: CAMPAIGN_SENDS_DISABLED is set")
    elif content_hash:
        console.print(f"on: {s.gateway_dir / 'SENDS_DISABLED'} (engagement {content_hash})")
    else:
        console.print("off")
