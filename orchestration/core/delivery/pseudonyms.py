"""Pseudonymous identifiers: a keyed hash of the customer id.

What leaves the warehouse towards a provider, and what appears in alerts or exported reports,
is ``recipient_ref(customer_id)``, not the id itself: without the key (from the environment,
``CAMPAIGN_PSEUDONYM_KEY``) it cannot be joined back to a customer. The embedded default uses a
fixed development key and says so; a deployment sets its own.
"""

from __future__ import annotations

import hashlib
import hmac
import os

KEY_ENV = "CAMPAIGN_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "development-only-pseudonym-key"


def pseudonym_key() -> bytes:
    return (os.environ.get(KEY_ENV, "").strip() or DEVELOPMENT_KEY).encode()


def recipient_ref(customer_id: int, key: bytes | None = None) -> str:
    digest = hmac.new(key or pseudonym_key(), str(int(customer_id)).encode(), hashlib.sha256)
    return digest.hexdigest()[:24]
