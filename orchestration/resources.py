"""Dagster resources: configuration resolved once per run into the objects assets use.

Each resource reads ``Settings.from_env()`` when a run uses it (not at import), so pointing a
deployment or a test at another data directory is an environment variable.
"""

from __future__ import annotations

import sys
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from packaging.version import Version

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


class CampaignDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without its two start-up costs this project does not use.

    Before each build, ``DbtCliResource.cli`` runs ``dbt --version`` in a subprocess (5.5 s here:
    dbt imports itself and asks PyPI for the latest release) and loads the dbt adapter and its
    macros in-process (about 3.5 s), which it needs only to fetch row counts or column metadata
    after the build. This project fetches neither, and runs the environment's own dbt, whose
    version is the installed dbt-core package's.
    """

    @cached_property
    def _cli_version(self) -> Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return Version(installed_version("dbt-core"))
        return super()._cli_version  # a dbt from PATH: ask it

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - no metadata is fetched
        return None


def build_resources() -> dict[str, object]:
    return {
        "settings": CampaignSettings(),
        "dbt": CampaignDbtCliResource(
            project_dir=campaign_dbt_project, dbt_executable=dbt_executable()
        ),
        "gateway": MessagingGateway(),
    }
