"""Deliver a campaign's selected recipients exactly once through a provider.

Contact details are joined here, and only here, from the raw contact table; they go to the
provider and nowhere else (the report below carries counts, never addresses).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from orchestration.core.gateway.ledger import DELIVERED, FAILED, SendLedger
from orchestration.core.gateway.outbox import OutboxProvider, OutgoingMessage
from orchestration.core.raw_contract import raw_path

KILL_SWITCH_ENV = "CAMPAIGN_SENDS_DISABLED"


def kill_switch_on() -> bool:
    return os.environ.get(KILL_SWITCH_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class DeliveryReport:
    requested: int = 0
    newly_due: int = 0
    already_in_ledger: int = 0
    attempted: int = 0
    delivered: int = 0
    failed: int = 0
    duplicates_prevented: int = 0
    seconds: float = 0.0
    failures_by_reason: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {
            k: v for k, v in self.__dict__.items() if isinstance(v, int | float)
        }
        out.update({f"failed_{k}": v for k, v in self.failures_by_reason.items()})
        return out


def lookup_addresses(raw_dir: Path, customer_ids: list[int], channel: str) -> dict[int, str]:
    """Verified addresses for the customers on a channel, read from the contact table."""
    import duckdb

    if not customer_ids:
        return {}
    con = duckdb.connect()
    try:
        con.register("wanted", pd.DataFrame({"customer_id": customer_ids}))
        rows = con.execute(
            "select c.customer_id, c.address from read_parquet($path) c"
            " join wanted using (customer_id) where c.channel = $channel and c.is_verified",
            {"path": str(raw_path(raw_dir, "contact_points")), "channel": channel},
        ).fetchall()
    finally:
        con.close()
    return {int(cid): address for cid, address in rows}


def deliver(
    recipients: pd.DataFrame,
    send_date: str,
    run_id: str,
    ledger: SendLedger,
    provider: OutboxProvider,
    raw_dir: Path,
    batch_size: int = 1_000,
) -> DeliveryReport:
    """Record ``recipients`` (campaign, customer_id, channel) as due, then dispatch what is due.

    Dispatch covers everything due for these campaigns, including rows a crashed run recorded but
    never marked, so a re-run finishes the job without sending anything twice.
    """
    started = time.perf_counter()
    report = DeliveryReport(requested=len(recipients))
    report.newly_due = ledger.record_due(recipients, send_date, run_id)
    report.already_in_ledger = report.requested - report.newly_due
    campaigns = sorted(recipients["campaign"].unique()) if len(recipients) else []
    while campaigns:
        claimed = ledger.claim_due(worker=run_id, limit=batch_size, campaigns=campaigns)
        if not claimed:
            break
        outcomes = []
        by_channel: dict[str, list] = {}
        for message in claimed:
            by_channel.setdefault(message.channel, []).append(message)
        for channel, messages in by_channel.items():
            addresses = lookup_addresses(raw_dir, [m.customer_id for m in messages], channel)
            sendable = []
            for m in messages:
                address = addresses.get(m.customer_id)
                if address is None:
                    outcomes.append(
                        (
                            m.idempotency_key,
                            FAILED,
                            provider.name,
                            None,
                            "no_verified_contact_point",
                        )
                    )
                    report.failures_by_reason["no_verified_contact_point"] = (
                        report.failures_by_reason.get("no_verified_contact_point", 0) + 1
                    )
                    continue
                sendable.append(
                    OutgoingMessage(
                        m.idempotency_key,
                        m.campaign,
                        m.customer_id,
                        channel,
                        address,
                        template=m.campaign,
                    )
                )
            report.attempted += len(sendable)
            for result in provider.send_batch(sendable):
                report.duplicates_prevented += int(result.duplicate)
                if result.accepted:
                    outcomes.append(
                        (
                            result.idempotency_key,
                            DELIVERED,
                            provider.name,
                            result.provider_message_id,
                            None,
                        )
                    )
                else:
                    outcomes.append(
                        (result.idempotency_key, FAILED, provider.name, None, result.error)
                    )
        ledger.mark(outcomes)
        report.delivered += sum(1 for o in outcomes if o[1] == DELIVERED)
        report.failed += sum(1 for o in outcomes if o[1] == FAILED)
    report.seconds = time.perf_counter() - started
    return report
