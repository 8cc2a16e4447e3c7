"""Real processes for the queue tests: Redis servers, `rlef worker`s, `rlef serve`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from service.client import spawn_service

RLEF = str(Path(sys.executable).parent / "rlef")
REDIS_URL = os.environ.get("RLEF_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def fresh_db(db: int) -> str:
    url = f"{REDIS_URL}/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


def wait_until(check, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, redis.RedisError, httpx.HTTPError):
            pass  # not up yet
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready within {timeout_s}s")


class Procs:
    """Processes started by a test; all killed at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], env: dict[str, str] | None = None,
              log: str = "proc") -> subprocess.Popen[bytes]:
        out = open(self.tmp / f"{log}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        self.procs.append(proc)
        return proc

    def worker(self, url: str, concurrency: int = 1, backend: str = "local",
               **env: str) -> subprocess.Popen[bytes]:
        return self.start([RLEF, "worker", "--redis-url", url, "--backend", backend,
                           "--concurrency", str(concurrency)], env=env, log="worker")

    def api(self, url: str, **env: str) -> str:
        # ready, not /healthz: its canary job would count in the tests' verdict stats
        proc, base = spawn_service(self.tmp / f"api-{len(self.procs)}.log", "--redis-url", url,
                                   env=env, ready_path="/openapi.json")
        self.procs.append(proc)
        return base

    def redis_server(self, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
        binary = shutil.which("redis-server") or "redis-server"
        proc = self.start([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir",
                           str(data_dir), "--appendonly", "yes", "--save", ""], log="redis")
        wait_until(lambda: redis.Redis(port=port).ping(), 10, "redis")
        return proc

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def workers_alive(url: str, n: int) -> None:
    r = redis.Redis.from_url(url)
    wait_until(lambda: len(list(r.scan_iter("rlef:worker:*"))) >= n, 60, f"{n} workers")
