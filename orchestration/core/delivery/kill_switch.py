"""Setting and lifting the kill switch file (``data/gateway/SENDS_DISABLED``), audited.

Anyone may stop the sends: ``campaign kill-switch on`` writes the file (who, when, why, a nonce)
and audits it. Lifting it is a governance action: with approvals required
(``CAMPAIGN_REQUIRE_APPROVALS``) the lift of *this* engagement needs a four-eyes approval. Its
hash covers the file's content and modification time, so an approval of an earlier engagement
(even a ``touch``-ed empty file with the same content) never lifts a later one. The first
``kill-switch off --as alice`` records alice's signed request and refuses; once another identity
approved that hash, ``kill-switch off`` removes the file.

The environment switch (``CAMPAIGN_SENDS_DISABLED``) belongs to the deployment's configuration
and is lifted there, not here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

from orchestration.core.delivery.dispatch import KILL_SWITCH_FILE
from orchestration.core.governance.approvals import (
    KILL_SWITCH,
    KILL_SWITCH_SUBJECT,
    Governance,
)
from orchestration.core.governance.identities import GovernanceError
from orchestration.core.observability.audit import (
    KILL_SWITCH_LIFT_REFUSED,
    KILL_SWITCH_OFF,
    KILL_SWITCH_ON,
    AuditLog,
)


class LiftAwaitingApproval(GovernanceError):
    """The kill switch stays on until another identity approves lifting it."""


def kill_switch_file(gateway_dir: Path) -> Path:
    return Path(gateway_dir) / KILL_SWITCH_FILE


def kill_switch_hash(gateway_dir: Path) -> str | None:
    """The hash an approval of lifting this engagement names (None when the file is absent)."""
    path = kill_switch_file(gateway_dir)
    if not path.exists():
        return None
    body = path.read_bytes() + b"|" + str(path.stat().st_mtime_ns).encode()
    return hashlib.sha256(body).hexdigest()


def engage(gateway_dir: Path, by: str, reason: str, audit: AuditLog | None) -> str:
    """Stop every dispatch (the next batch of a running one included); returns the lift hash."""
    path = kill_switch_file(gateway_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "by": by,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "nonce": secrets.token_hex(8),
    }
    path.write_text(json.dumps(record, sort_keys=True) + "\n")
    content_hash = kill_switch_hash(gateway_dir) or ""
    if audit is not None:
        audit.append(
            by, KILL_SWITCH_ON, KILL_SWITCH_SUBJECT, {**record, "content_hash": content_hash}
        )
    return content_hash


def lift(gateway_dir: Path, by: str, governance: Governance, require_approval: bool) -> str:
    """Remove the kill switch file as ``by``; with ``require_approval`` only once another
    identity approved lifting this engagement (the first call records ``by``'s request and
    raises :class:`LiftAwaitingApproval` naming the hash to approve). Returns a one-line note."""
    content_hash = kill_switch_hash(gateway_dir)
    if content_hash is None:
        raise GovernanceError(f"the kill switch is not on (no {kill_switch_file(gateway_dir)})")
    approval = "not required (CAMPAIGN_REQUIRE_APPROVALS is off)"
    if require_approval:
        status = governance.status(KILL_SWITCH, KILL_SWITCH_SUBJECT, content_hash)
        if not status.approved:
            requested = governance.requesters(KILL_SWITCH, KILL_SWITCH_SUBJECT, content_hash)
            if not requested:
                governance.submit(KILL_SWITCH, KILL_SWITCH_SUBJECT, content_hash, by)
                requested = [governance.identities.get(by).name]
            others = ", ".join(requested)
            if governance.audit is not None:
                governance.audit.append(
                    by,
                    KILL_SWITCH_LIFT_REFUSED,
                    KILL_SWITCH_SUBJECT,
                    {"content_hash": content_hash, "reason": status.reason},
                )
            raise LiftAwaitingApproval(
                f"lifting the kill switch needs an approval (requested by {others}): "
                f"campaign approve kill-switch --hash {content_hash} --as <not {others}>"
            )
        approval = status.reason
    kill_switch_file(gateway_dir).unlink()
    if governance.audit is not None:
        governance.audit.append(
            by,
            KILL_SWITCH_OFF,
            KILL_SWITCH_SUBJECT,
            {"content_hash": content_hash, "approval": approval},
        )
    return f"kill switch lifted by {by}: {approval}"
