"""Email through an SMTP relay (the company's MTA, or an ESP's SMTP endpoint).

Each message gets a deterministic ``Message-ID`` and an ``X-Idempotency-Key`` header derived from
its idempotency key, so receiving systems that deduplicate can. SMTP cannot be asked afterwards
whether it took a message, so ``supports_lookup`` is False: the gateway never re-sends a message
whose outcome is unknown through this provider (it is marked failed as unconfirmed instead).
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from orchestration.core.delivery.providers import OutgoingMessage, ProviderError, ProviderResult
from orchestration.settings import secret


class SmtpProvider:
    supports_lookup = False

    def __init__(
        self,
        host: str,
        port: int = 25,
        sender: str = "campaigns@localhost",
        timeout_seconds: float = 10.0,
        starttls: bool = False,
        username_env: str | None = None,
        password_env: str | None = None,
        name: str = "smtp",
    ):
        if not host:
            raise ValueError(f"provider {name!r}: no SMTP host configured; set `host`")
        self.name = name
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.timeout = timeout_seconds
        self.starttls = starttls
        # Credentials are named secrets (the variables config/gateway.yaml names), never values.
        self.username = secret(username_env) if username_env else ""
        self.password = secret(password_env) if password_env else ""

    def _email(self, m: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = m.address
        email["Subject"] = m.template.replace("_", " ")
        email["Message-ID"] = f"<{m.idempotency_key}@campaigns.invalid>"
        email["X-Idempotency-Key"] = m.idempotency_key
        email["X-Campaign"] = m.campaign
        email.set_content(f"Campaign {m.campaign}.\n")
        return email

    def send_batch(self, messages: list[OutgoingMessage]) -> list[ProviderResult]:
        if not messages:
            return []
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise ProviderError(
                f"{self.name}: cannot connect to {self.host}:{self.port} ({type(exc).__name__})",
                transient=True,
            ) from exc
        results: list[ProviderResult] = []
        try:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            for m in messages:
                try:
                    smtp.send_message(self._email(m))
                except smtplib.SMTPRecipientsRefused:
                    results.append(
                        ProviderResult(m.idempotency_key, False, error="recipient refused")
                    )
                except smtplib.SMTPResponseException as exc:
                    if 400 <= exc.smtp_code < 500:
                        raise ProviderError(
                            f"{self.name}: SMTP {exc.smtp_code} (try later)",
                            transient=True,
                            status=exc.smtp_code,
                            partial=results,
                        ) from exc
                    results.append(
                        ProviderResult(m.idempotency_key, False, error=f"SMTP {exc.smtp_code}")
                    )
                else:
                    results.append(
                        ProviderResult(
                            m.idempotency_key,
                            True,
                            provider_message_id=f"<{m.idempotency_key}@campaigns.invalid>",
                        )
                    )
        except (TimeoutError, OSError, smtplib.SMTPServerDisconnected) as exc:
            raise ProviderError(
                f"{self.name}: connection lost ({type(exc).__name__})",
                transient=True,
                uncertain=True,
                partial=results,
            ) from exc
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return results

    def lookup(self, keys: list[str]) -> dict[str, str]:
        raise NotImplementedError("SMTP cannot report which messages it accepted")
