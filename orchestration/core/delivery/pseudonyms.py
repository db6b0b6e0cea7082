"""Pseudonymous identifiers: a keyed hash of the customer id.

What leaves the warehouse towards a provider, and what appears in alerts or exported reports,
is ``recipient_ref(customer_id)``, not the id itself: without the key (``CAMPAIGN_PSEUDONYM_KEY``,
read by :func:`orchestration.settings.pseudonym_key`) it cannot be joined back to a customer.
Development falls back to a fixed, public key and warns once; production
(``CAMPAIGN_ENV=production``) refuses to run without a key of its own.
"""

from __future__ import annotations

import hashlib
import hmac

from orchestration.settings import DEVELOPMENT_PSEUDONYM_KEY as DEVELOPMENT_KEY
from orchestration.settings import PSEUDONYM_KEY_ENV as KEY_ENV
from orchestration.settings import pseudonym_key

__all__ = ["DEVELOPMENT_KEY", "KEY_ENV", "pseudonym_key", "recipient_ref"]


def recipient_ref(customer_id: int, key: bytes | None = None) -> str:
    digest = hmac.new(key or pseudonym_key(), str(int(customer_id)).encode(), hashlib.sha256)
    return digest.hexdigest()[:24]
