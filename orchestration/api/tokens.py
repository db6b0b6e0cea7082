"""Bearer tokens for the decision API, stored hashed.

A token is ``cmp_<id>_<secret>``: the id finds its record, the secret is checked against a salted
SHA-256 digest (a token is 256 random bits, so a fast hash is enough; nothing reversible is kept).
The file (default ``<data>/api/tokens.json``, mode 0600) holds per token: id, name, scopes, salt,
digest, created and revoked times. ``campaign token create`` prints a new token once;
``campaign token list`` never prints secrets (they are not stored); ``campaign token revoke NAME``
stops it at the next request (the service re-reads the file when it changes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestration.settings import Settings

SCOPES = ("decide", "events", "admin")
PREFIX = "cmp"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TokenError(ValueError):
    """A token command that cannot be done (unknown scope or name, a name in use)."""


def tokens_path(settings: Settings) -> Path:
    return settings.data_dir / "api" / "tokens.json"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    scopes: tuple[str, ...]
    salt: str
    digest: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TokenStore:
    """The token file; ``authenticate`` re-reads it when it changed (a stat per request)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_id: dict[str, TokenRecord] = {}

    # --- the file ---------------------------------------------------------------------------

    def records(self) -> list[TokenRecord]:
        if not self.path.exists():
            return []
        raw = json.loads(self.path.read_text())
        return [
            TokenRecord(**{**entry, "scopes": tuple(entry["scopes"])})
            for entry in raw.get("tokens", [])
        ]

    def _write(self, records: list[TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        payload = {
            "version": 1,
            "tokens": [{**asdict(r), "scopes": list(r.scopes)} for r in records],
        }
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    # --- commands ---------------------------------------------------------------------------

    def create(self, scopes: list[str], name: str | None = None) -> tuple[TokenRecord, str]:
        """A new token with ``scopes``; returns its record and the token (shown once)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if not scopes or unknown:
            raise TokenError(
                f"unknown scope(s) {', '.join(unknown) or '(none given)'}; choose from "
                f"{', '.join(SCOPES)} (--scope decide)"
            )
        records = self.records()
        token_id = secrets.token_hex(6)
        name = name or f"token-{token_id}"
        if not NAME.match(name):
            raise TokenError(
                f"token name {name!r} is not valid: letters, digits, '.', '_' or '-', 1 to 64"
            )
        if any(r.name == name and r.active for r in records):
            raise TokenError(f"a token named {name!r} exists; revoke it or choose another --name")
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        record = TokenRecord(
            id=token_id,
            name=name,
            scopes=tuple(sorted(set(scopes))),
            salt=salt,
            digest=_digest(salt, secret),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._write([*records, record])
        return record, f"{PREFIX}_{token_id}_{secret}"

    def revoke(self, name: str) -> TokenRecord:
        records = self.records()
        matches = [r for r in records if r.active and (r.name == name or r.id == name)]
        if not matches:
            raise TokenError(f"no active token named {name!r} (see `campaign token list`)")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        revoked = [
            TokenRecord(**{**asdict(r), "revoked_at": now}) if r in matches else r for r in records
        ]
        self._write(revoked)
        return next(r for r in revoked if r.id == matches[0].id)

    # --- requests ---------------------------------------------------------------------------

    def _refresh(self) -> None:
        try:
            status = os.stat(self.path)
            stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return
        records = self.records() if stamp is not None else []
        self._by_id = {r.id: r for r in records}
        self._stamp = stamp

    def authenticate(self, token: str) -> TokenRecord | None:
        """The active record whose secret this is, or None."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not token_id or not secret:
            return None
        with self._lock:
            self._refresh()
            record = self._by_id.get(token_id)
        if record is None or not record.active:
            return None
        return record if hmac.compare_digest(record.digest, _digest(record.salt, secret)) else None
