"""Who may submit and approve, and the key each one signs with (``config/approvers.yaml``).

Each identity has exactly one key:

- ``hmac_secret_env``: the name of the environment variable that holds a shared HMAC-SHA256
  secret. Signing and verifying both need the secret, so the process that verifies (the release
  step) must have every HMAC approver's secret too: simple, but the verifier could also sign.
- ``ed25519_public_key`` (base64 of the 32 raw bytes) for verifying, plus, only where that person
  signs, ``ed25519_private_key_file`` (PEM, PKCS8) or ``ed25519_private_key_env``. The verifier
  holds public keys only and cannot sign for anyone: the choice for a shared deployment.

No key, no signature: an identity whose secret is not set (or whose key file is missing) cannot
submit or approve, and its earlier signatures cannot be verified (they do not count).

The file names keys, never holds secrets; the secrets are resolved at use through a lookup
(``orchestration.settings.secret``), so this module reads no environment itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestration.core.common.yaml_files import YamlFileError, load_yaml_model

HMAC = "hmac"
ED25519 = "ed25519"

SecretLookup = Callable[[str], str]


class GovernanceError(ValueError):
    """A submission, approval or lift that cannot be accepted (one-line message)."""


class ApproversFileError(YamlFileError):
    """``config/approvers.yaml`` cannot be used; the message names the file and field."""


class IdentityKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hmac_secret_env: str | None = None
    ed25519_public_key: str | None = None
    ed25519_private_key_file: Path | None = None
    ed25519_private_key_env: str | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> IdentityKey:
        has_hmac = self.hmac_secret_env is not None
        has_ed = self.ed25519_public_key is not None
        if has_hmac == has_ed:
            raise ValueError(
                "give exactly one key: hmac_secret_env, or ed25519_public_key (with "
                "ed25519_private_key_file or _env where this identity signs)"
            )
        if has_hmac and (self.ed25519_private_key_file or self.ed25519_private_key_env):
            raise ValueError("an HMAC identity takes no ed25519 private key")
        if has_ed:
            _public_key_bytes(self.ed25519_public_key or "")
        return self


class ApproversFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    identities: dict[str, IdentityKey] = Field(default_factory=dict)


def _public_key_bytes(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"ed25519_public_key is not base64: {exc}") from exc
    if len(raw) != 32:
        raise ValueError(f"ed25519_public_key must be 32 bytes (base64), got {len(raw)}")
    return raw


@dataclass(frozen=True)
class Identity:
    """One approver: a name and a key that signs and verifies canonical payloads."""

    name: str
    key: IdentityKey
    lookup: SecretLookup

    @property
    def kind(self) -> str:
        return HMAC if self.key.hmac_secret_env else ED25519

    # --- keys, resolved at use -------------------------------------------------------------
    def _hmac_secret(self) -> bytes:
        value = self.lookup(self.key.hmac_secret_env or "").strip()
        if not value:
            raise GovernanceError(
                f"identity {self.name!r} has no key: set {self.key.hmac_secret_env} "
                "(its HMAC secret)"
            )
        return value.encode()

    def _private_key(self):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        pem = b""
        if self.key.ed25519_private_key_env:
            pem = self.lookup(self.key.ed25519_private_key_env).strip().encode()
        elif self.key.ed25519_private_key_file and self.key.ed25519_private_key_file.exists():
            pem = self.key.ed25519_private_key_file.read_bytes()
        if not pem:
            where = self.key.ed25519_private_key_env or self.key.ed25519_private_key_file
            raise GovernanceError(
                f"identity {self.name!r} has no private key here ({where or 'none configured'}): "
                "only the holder of its ed25519 key can sign as it"
            )
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise GovernanceError(
                f"identity {self.name!r}: its private key cannot be read as an unencrypted PEM "
                f"(PKCS8) key: {exc}"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise GovernanceError(f"identity {self.name!r}: its private key is not ed25519")
        if _raw_public(key.public_key()) != _public_key_bytes(self.key.ed25519_public_key or ""):
            raise GovernanceError(
                f"identity {self.name!r}: its private key does not match its ed25519_public_key"
            )
        return key

    # --- sign and verify ---------------------------------------------------------------------
    def sign(self, payload: bytes) -> str:
        """A hex signature of ``payload``; raises :class:`GovernanceError` without a key."""
        if self.kind == HMAC:
            return hmac.new(self._hmac_secret(), payload, hashlib.sha256).hexdigest()
        return self._private_key().sign(payload).hex()

    def can_verify(self) -> bool:
        if self.kind == ED25519:
            return True
        return bool(self.lookup(self.key.hmac_secret_env or "").strip())

    def verify(self, payload: bytes, signature: str) -> bool:
        """Whether ``signature`` is this identity's over ``payload`` (False without a key)."""
        if self.kind == HMAC:
            if not self.can_verify():
                return False
            expected = hmac.new(self._hmac_secret(), payload, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, str(signature))
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        public = Ed25519PublicKey.from_public_bytes(
            _public_key_bytes(self.key.ed25519_public_key or "")
        )
        try:
            public.verify(bytes.fromhex(str(signature)), payload)
        except (InvalidSignature, ValueError):
            return False
        return True


def _raw_public(public_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Identities:
    """The configured identities, by name."""

    by_name: dict[str, Identity]
    source: str = "config/approvers.yaml"

    def get(self, name: str) -> Identity:
        identity = self.by_name.get(str(name).strip())
        if identity is None:
            known = ", ".join(sorted(self.by_name)) or "none configured"
            raise GovernanceError(
                f"unknown approver {name!r}: not an identity in {self.source} (known: {known})"
            )
        return identity


def load_identities(path: Path, lookup: SecretLookup) -> Identities:
    """The identities of ``path`` (a missing file: none, so nothing can be approved)."""
    path = Path(path)
    if not path.exists():
        return Identities({}, str(path))
    parsed = load_yaml_model(
        path, ApproversFile, ApproversFileError, "approvers file", empty_is_default=True
    )
    return Identities(
        {name: Identity(name, key, lookup) for name, key in parsed.identities.items()}, str(path)
    )


def new_ed25519_key() -> tuple[str, bytes]:
    """A fresh key pair: (base64 public key for the approvers file, PEM private key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return base64.b64encode(_raw_public(key.public_key())).decode(), pem
