"""A real `rlef serve` process on a free loopback port, for the integrations' tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def rlef_serve(log: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`rlef serve --backend local ARGS` until the block ends; yields its base URL."""
    port = free_port()
    rlef = str(Path(sys.executable).parent / "rlef")
    with log.open("wb") as out:
        proc = subprocess.Popen([rlef, "serve", "--backend", "local", "--port", str(port), *args],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rlef serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
