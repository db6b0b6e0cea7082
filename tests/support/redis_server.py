"""A throw-away redis-server (Debian's package) on 127.0.0.1, for tests and benchmarks.

No persistence (``--save '' --appendonly no``), its directory a temporary one, a free port.
``start()`` waits until the server answers PING; ``stop()`` terminates it and waits for it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = (
    "redis-server is not installed: `make redis` installs Debian's redis-server "
    "(sudo apt-get install redis-server)"
)
DATABASES = 64  # tests take a fresh database number each (SELECT n)


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """``with RedisServer(tmp_dir) as server: server.url(db)``."""

    def __init__(self, directory: Path, maxmemory: str | None = None):
        self.directory = Path(directory)
        self.maxmemory = maxmemory
        self.port = 0
        self._process: subprocess.Popen | None = None
        self._used_dbs = 0

    def fresh_db(self) -> int:
        """A database number not handed out before (1, 2, ...), emptied."""
        self._used_dbs += 1
        if self._used_dbs >= DATABASES:
            raise RuntimeError(f"more than {DATABASES - 1} Redis databases asked for")
        self.client(self._used_dbs).flushdb()
        return self._used_dbs

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db)

    def start(self, timeout_seconds: float = 20.0) -> RedisServer:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        command += ["--databases", str(DATABASES), "--protected-mode", "yes"]
        if self.maxmemory:
            command += ["--maxmemory", self.maxmemory]
        log = open(self.directory / "redis.log", "wb")  # noqa: SIM115 - the server keeps it
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_seconds
        while True:
            if self._process.poll() is not None:
                output = (self.directory / "redis.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"redis-server exited at start: {output}")
            try:
                if self.client().ping():
                    return self
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"redis-server did not answer on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def used_memory(self, db: int = 0) -> int:
        return int(self.client(db).info("memory")["used_memory"])

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
