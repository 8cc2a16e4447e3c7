"""Helpers every rlef command line shares (the service's, the trainer's, the tests'):
the one way a command fails, a free loopback port, and a server started and waited for.

service.client re-exports them, since the trainer imports only service.client and
service.schema; this module therefore imports nothing from service.client at load time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def fail(message: str) -> SystemExit:
    """`raise fail("why")`: the message in red on stderr, exit status 2, no traceback."""
    import typer

    typer.secho(f"error: {message}", fg="red", err=True)
    return SystemExit(2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 60.0, alive: Callable[[], bool] = lambda: True,
               path: str = "/healthz") -> bool:
    """Poll GET {url}{path} until it answers 200; False once `alive()` is false or on time-out.

    /healthz runs a canary job (and in queue mode waits for a worker); tests that count
    jobs wait on /openapi.json instead.
    """
    deadline = time.monotonic() + timeout_s
    while alive() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}{path}", timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass  # still starting
        time.sleep(0.1)
    return False


def spawn_service(log: Path, *args: str, env: dict[str, str] | None = None,
                  timeout_s: float = 60.0, ready_path: str = "/healthz",
                  ) -> tuple[subprocess.Popen[bytes], str]:
    """`rlef-service serve --port P ARGS` in its own process session, returned once healthy."""
    from service.client import ServiceError  # deferred: service.client imports this module

    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port),
                                 *args], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if not wait_ready(url, timeout_s, alive=lambda: proc.poll() is None, path=ready_path):
        proc.kill()
        proc.wait()
        raise ServiceError(f"the service did not start; {log} ends:\n"
                           f"{log.read_text(errors='replace')[-3000:]}")
    return proc, url


@contextmanager
def local_service(log: Path, pool_size: int = 2, *args: str,
                  env: dict[str, str] | None = None) -> Iterator[str]:
    """A bubblewrap-backed service in its own process for as long as the block runs."""
    proc, url = spawn_service(log, "--backend", "local", "--pool-size", str(pool_size), *args,
                              env=env)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def serve_in_thread(app: Any, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve an ASGI app from a thread of this process on a free port, for the block."""
    import uvicorn

    from service.client import ServiceError  # deferred: service.client imports this module

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_ready(url, timeout_s, alive=thread.is_alive):
            raise ServiceError(f"the in-process server on {url} did not start")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
