"""A team of four identities for the governance tests: alice and carol sign with HMAC secrets,
bob with an ed25519 key, and dave is configured but his secret is not set (no key, no approval).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestration.core.governance.identities import new_ed25519_key

SECRETS = {
    "CAMPAIGN_TEST_ALICE_SECRET": "alice-test-secret",
    "CAMPAIGN_TEST_CAROL_SECRET": "carol-test-secret",
}


def write_approvers(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write the approvers file, set its secrets and turn approvals on; returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    public, pem = new_ed25519_key()
    key_file = directory / "bob.ed25519.pem"
    key_file.write_bytes(pem)
    identities = {
        "alice": {"hmac_secret_env": "CAMPAIGN_TEST_ALICE_SECRET"},
        "bob": {"ed25519_public_key": public, "ed25519_private_key_file": str(key_file)},
        "carol": {"hmac_secret_env": "CAMPAIGN_TEST_CAROL_SECRET"},
        "dave": {"hmac_secret_env": "CAMPAIGN_TEST_DAVE_SECRET"},
    }
    path = directory / "approvers.yaml"
    path.write_text(yaml.safe_dump({"identities": identities}))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CAMPAIGN_TEST_DAVE_SECRET", raising=False)
    monkeypatch.setenv("CAMPAIGN_APPROVERS_FILE", str(path))
    monkeypatch.setenv("CAMPAIGN_REQUIRE_APPROVALS", "true")
    return path
