"""dbt-duckdb plugin: create the warehouse and exports directories before DuckDB opens the database,
and give DuckDB the threads and memory limit of the settings.

DuckDB creates neither the parent directory of its database file nor that of a ``COPY ... TO``
target, so a first ``dbt build`` on a fresh data directory would fail. dbt-duckdb calls
``update_connection_config`` right before ``duckdb.connect``. Loaded through ``module_paths`` in
profiles.yml (relative to the working directory, which is this dbt project).

DuckDB's threads and memory limit come from ``orchestration.settings`` (CAMPAIGN_WAREHOUSE_THREADS,
CAMPAIGN_WAREHOUSE_MEMORY_GB; defaults from the machine) unless the profile's ``settings`` set
them: beyond the limit DuckDB spills to a temporary directory next to the database file.
"""

from __future__ import annotations

import os
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin


class Plugin(BasePlugin):
    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        path = str(creds.path)
        if path != ":memory:" and "://" not in path and not path.startswith("md:"):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        root = getattr(creds, "external_root", None)
        if root and "://" not in str(root):
            os.makedirs(str(root), exist_ok=True)
        from orchestration.settings import Settings

        settings = Settings.from_env()
        config.setdefault("threads", settings.warehouse_threads)
        config.setdefault("memory_limit", f"{settings.warehouse_memory_gb}GB")
