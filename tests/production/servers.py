"""Throwaway Postgres and Redis for the production-profile tests, on free 127.0.0.1 ports.

Started and stopped with ``scripts/services.sh`` (what ``make services-up`` runs), pointed at a
scratch directory, so the test exercises the same script a user runs. As root the Postgres
cluster runs as the unprivileged ``campaign_pg`` user, so the scratch directory lives directly
under the system temp directory (pytest's own tmp tree is private to root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestration.settings import PROJECT_DIR

SERVICES_SCRIPT = PROJECT_DIR / "scripts" / "services.sh"
PASSWORD = "test-only-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Servers:
    root: Path
    postgres_port: int
    redis_port: int

    @property
    def env(self) -> dict[str, str]:
        return {
            "CAMPAIGN_SERVICES_DIR": str(self.root),
            "CAMPAIGN_PG_PORT": str(self.postgres_port),
            "CAMPAIGN_REDIS_PORT": str(self.redis_port),
            "CAMPAIGN_PG_PASSWORD": PASSWORD,
        }

    @property
    def postgres_url(self) -> str:
        return f"postgresql://campaign:{PASSWORD}@127.0.0.1:{self.postgres_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def services(self, command: str) -> str:
        done = subprocess.run(
            [str(SERVICES_SCRIPT), command],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"services.sh {command} failed: {done.stderr.strip()}")
        return done.stdout + done.stderr

    def restart(self) -> None:
        """Stop both servers cleanly and start them again on the same data."""
        self.services("down")
        self.services("up")


@contextmanager
def production_servers() -> Iterator[Servers]:
    root = Path(tempfile.mkdtemp(prefix="campaign-services-"))
    root.chmod(0o755)
    servers = Servers(root=root, postgres_port=free_port(), redis_port=free_port())
    try:
        servers.services("up")
        yield servers
    finally:
        try:
            servers.services("down")
        finally:
            shutil.rmtree(root, ignore_errors=True)
