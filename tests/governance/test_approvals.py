"""Four eyes: a version counts as approved only when an identity other than its author signed
off its exact hash with a configured key; every refusal says why in one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestration.core.governance.approvals import (
    CAMPAIGN,
    Approval,
    file_hash,
    governance_for,
    release_holds,
)
from orchestration.core.governance.identities import (
    ApproversFileError,
    GovernanceError,
    load_identities,
)
from orchestration.core.observability.audit import AuditLog, audit_log_path

H1 = "1" * 64
H2 = "2" * 64


def test_self_approval_is_refused(governance):
    governance.submit(CAMPAIGN, "spring", H1, "alice")
    with pytest.raises(GovernanceError, match="self-approval refused: alice"):
        governance.approve(CAMPAIGN, "spring", H1, "alice")
    assert not governance.status(CAMPAIGN, "spring", H1).approved


def test_an_unknown_approver_and_one_without_a_key_are_refused(governance):
    governance.submit(CAMPAIGN, "spring", H1, "alice")
    with pytest.raises(GovernanceError, match="unknown approver 'mallory'"):
        governance.approve(CAMPAIGN, "spring", H1, "mallory")
    with pytest.raises(GovernanceError, match="'dave' has no key: set CAMPAIGN_TEST_DAVE_SECRET"):
        governance.approve(CAMPAIGN, "spring", H1, "dave")
    assert governance.store.approvals() == []


def test_a_version_nobody_submitted_cannot_be_approved(governance):
    with pytest.raises(GovernanceError, match="was never submitted"):
        governance.approve(CAMPAIGN, "spring", H1, "bob")
    assert "not submitted" in governance.status(CAMPAIGN, "spring", H1).reason


def test_an_approval_names_the_exact_hash_and_counts_for_no_other(governance):
    governance.submit(CAMPAIGN, "spring", H1, "alice")
    with pytest.raises(GovernanceError, match="hash mismatch"):
        governance.approve(CAMPAIGN, "spring", H1, "bob", current_hash=H2)
    governance.approve(CAMPAIGN, "spring", H1, "bob", current_hash=H1)  # ed25519
    assert governance.status(CAMPAIGN, "spring", H1).approved
    assert not governance.status(CAMPAIGN, "spring", H2).approved
    assert not governance.status(CAMPAIGN, "other_campaign", H1).approved


def _insert(settings, approval: Approval) -> None:
    with sqlite3.connect(settings.approvals_db) as con:
        con.execute(
            "insert into approvals (kind, subject, content_hash, author, approver, approved_at,"
            " signature) values (?, ?, ?, ?, ?, ?, ?)",
            (
                approval.kind,
                approval.subject,
                approval.content_hash,
                approval.author,
                approval.approver,
                approval.approved_at,
                approval.signature,
            ),
        )


def test_a_forged_or_wrongly_keyed_approval_does_not_count(settings, governance, monkeypatch):
    governance.submit(CAMPAIGN, "spring", H1, "alice")
    unsigned = Approval(CAMPAIGN, "spring", H1, "alice", "carol", "2026-11-23T09:00:00+00:00")
    # a row written straight into the store, signed with a guessed secret
    monkeypatch.setenv("CAMPAIGN_TEST_CAROL_SECRET", "a-guess")
    forged = Approval(
        **{
            **unsigned.__dict__,
            "signature": governance.identities.get("carol").sign(unsigned.payload()),
        }
    )
    monkeypatch.setenv("CAMPAIGN_TEST_CAROL_SECRET", "carol-test-secret")
    _insert(settings, forged)
    # an ed25519 "approval" by bob signed by some other key pair
    other = Approval(**{**unsigned.__dict__, "approver": "bob", "signature": "00" * 64})
    _insert(settings, other)
    status = governance.status(CAMPAIGN, "spring", H1)
    assert not status.approved
    assert "carol's signature does not verify" in status.reason
    assert "bob's signature does not verify" in status.reason
    # a genuine approval, then its row edited to approve another hash: the edit does not count
    real = governance.approve(CAMPAIGN, "spring", H1, "carol")
    _insert(settings, Approval(**{**real.__dict__, "content_hash": H2}))
    governance.submit(CAMPAIGN, "spring", H2, "alice")
    assert governance.status(CAMPAIGN, "spring", H1).approved
    assert not governance.status(CAMPAIGN, "spring", H2).approved


def test_a_submission_made_in_someone_elses_name_does_not_make_them_the_author(
    settings, governance
):
    # mallory-in-alice's-shoes: a submission row "by carol" that carol never signed
    with sqlite3.connect(settings.approvals_db) as con:
        con.execute(
            "insert into submissions (kind, subject, content_hash, author, submitted_at,"
            " signature) values ('campaign', 'spring', ?, 'carol', 'now', 'ff')",
            (H1,),
        )
    with pytest.raises(GovernanceError, match="never submitted"):
        governance.approve(CAMPAIGN, "spring", H1, "alice")


def test_an_identity_without_a_key_cannot_verify_its_old_approvals(governance, monkeypatch):
    governance.submit(CAMPAIGN, "spring", H1, "alice")
    governance.approve(CAMPAIGN, "spring", H1, "carol")
    monkeypatch.delenv("CAMPAIGN_TEST_CAROL_SECRET")
    status = governance.status(CAMPAIGN, "spring", H1)
    assert not status.approved and "no key to verify carol" in status.reason


def _campaign(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spring.yaml"
    path.write_text(text)
    return path


def test_editing_an_approved_campaign_file_holds_it_again(settings, governance, tmp_path):
    campaign = _campaign(tmp_path, "name: spring\nmax_sends: 10\n")
    policy = settings.policy_file
    governance.submit("policy", policy.name, file_hash(policy), "alice")
    governance.approve("policy", policy.name, file_hash(policy), "bob")
    held = release_holds(governance, {"spring": campaign}, policy)
    assert "not submitted" in held.campaigns["spring"]
    governance.submit(CAMPAIGN, "spring", file_hash(campaign), "alice")
    governance.approve(CAMPAIGN, "spring", file_hash(campaign), "bob")
    assert release_holds(governance, {"spring": campaign}, policy).campaigns == {}
    campaign.write_text("name: spring\nmax_sends: 10000\n")
    again = release_holds(governance, {"spring": campaign}, policy)
    assert "not submitted" in again.campaigns["spring"] and again.files == ("spring.yaml",)


def test_an_unapproved_policy_holds_every_campaign(settings, governance, tmp_path):
    campaign = _campaign(tmp_path, "name: spring\n")
    governance.submit(CAMPAIGN, "spring", file_hash(campaign), "alice")
    governance.approve(CAMPAIGN, "spring", file_hash(campaign), "carol")
    held = release_holds(governance, {"spring": campaign}, settings.policy_file)
    assert "policy global_policy.yaml" in held.campaigns["spring"]
    # decisions made under another policy version than the file's: held too
    policy_hash = file_hash(settings.policy_file)
    governance.submit("policy", settings.policy_file.name, policy_hash, "carol")
    governance.approve("policy", settings.policy_file.name, policy_hash, "alice")
    assert release_holds(governance, {"spring": campaign}, settings.policy_file).campaigns == {}
    stale = release_holds(governance, {"spring": campaign}, settings.policy_file, {"abcdef123456"})
    assert "decided under policy version abcdef123456" in stale.campaigns["spring"]


def test_every_submission_and_approval_is_audited_and_the_chain_holds(settings, governance):
    governance.submit(CAMPAIGN, "spring", H1, "alice")
    governance.approve(CAMPAIGN, "spring", H1, "bob")
    log = AuditLog(audit_log_path(settings.data_dir))
    actions = [(e.actor, e.action, e.subject) for e in log.entries()]
    assert actions == [
        ("alice", "submit", "campaign:spring"),
        ("bob", "approve", "campaign:spring"),
    ]
    assert log.entries()[1].details == {"author": "alice", "content_hash": H1, "kind": "campaign"}
    assert log.verify().ok


def test_every_refused_approval_is_audited_with_its_reason(settings, governance):
    governance.submit(CAMPAIGN, "spring", H1, "alice")
    attempts = [
        ("alice", H1, "self-approval refused"),
        ("mallory", H1, "unknown approver"),
        ("bob", H2, "never submitted"),
    ]
    for approver, content_hash, _ in attempts:
        with pytest.raises(GovernanceError):
            governance.approve(CAMPAIGN, "spring", content_hash, approver)
    refused = [e for e in AuditLog(audit_log_path(settings.data_dir)).entries()][1:]
    assert [(e.actor, e.action, e.details["content_hash"]) for e in refused] == [
        (approver, "approve_refused", content_hash) for approver, content_hash, _ in attempts
    ]
    for entry, (_, _, reason) in zip(refused, attempts, strict=True):
        assert reason in entry.details["reason"]
    assert governance.store.approvals() == []


def test_a_broken_approvers_file_is_one_line_naming_the_file_and_field(tmp_path):
    path = tmp_path / "approvers.yaml"
    path.write_text("identities:\n  erin:\n    hmac_secret_env: X\n    ed25519_public_key: abc\n")
    with pytest.raises(ApproversFileError, match="approvers.yaml.*exactly one key"):
        load_identities(path, lambda _: "")
    path.write_text("identities:\n  erin:\n    ed25519_public_key: 'not base64!'\n")
    with pytest.raises(ApproversFileError, match="ed25519_public_key is not base64"):
        load_identities(path, lambda _: "")
    # no file: nobody can approve anything
    nobody = load_identities(tmp_path / "missing.yaml", lambda _: "")
    with pytest.raises(GovernanceError, match="none configured"):
        nobody.get("alice")


def test_approvals_off_by_default_in_development_on_in_production(data_dir, monkeypatch):
    from orchestration.settings import Settings

    monkeypatch.delenv("CAMPAIGN_REQUIRE_APPROVALS", raising=False)
    assert Settings.from_env().require_approvals is False
    monkeypatch.setenv("CAMPAIGN_ENV", "production")
    assert Settings.from_env().require_approvals is True
    assert governance_for(Settings.from_env()).identities.by_name == {}


def test_an_unreadable_private_key_is_a_one_line_refusal(settings, governance, tmp_path):
    (tmp_path / "team" / "bob.ed25519.pem").write_text("not a key")
    governance.submit(CAMPAIGN, "spring", H1, "alice")
    with pytest.raises(GovernanceError, match="'bob': its private key cannot be read"):
        governance.approve(CAMPAIGN, "spring", H1, "bob")
