"""Dagster resources: configuration resolved once per run into the objects assets use.

Each resource reads ``Settings.from_env()`` when a run uses it (not at import), so pointing a
deployment or a test at another data directory is an environment variable.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource

from orchestration.core.delivery.config import GatewayConfig, load_gateway_config
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.observability.audit import AuditLog, audit_log_path
from orchestration.dbt_project import campaign_dbt_project, dbt_executable
from orchestration.settings import Settings


class CampaignSettings(ConfigurableResource):
    """Paths, thresholds and names of the embedded default or of a configured deployment."""

    def get(self) -> Settings:
        return Settings.from_env()


class MessagingGateway(ConfigurableResource):
    """The send ledger and the providers of each channel (``config/gateway.yaml``; every channel
    to the local outbox by default). Releases and revocations through this ledger are appended
    to the audit log ``<data_dir>/audit/audit.db``."""

    def ledger(self, settings: Settings) -> SendLedger:
        return SendLedger(
            settings.gateway_dir / "ledger.db", audit=AuditLog(audit_log_path(settings.data_dir))
        )

    def config(self, settings: Settings) -> GatewayConfig:
        return load_gateway_config(settings.gateway_config)


def build_resources() -> dict[str, object]:
    return {
        "settings": CampaignSettings(),
        "dbt": DbtCliResource(project_dir=campaign_dbt_project, dbt_executable=dbt_executable()),
        "gateway": MessagingGateway(),
    }
