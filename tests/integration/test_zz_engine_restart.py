"""The Docker engine restarted under a warm pool (run last: every container dies with it).

The pool notices its dead sandboxes, relaunches them once the engine is back, and jobs run
again; a job caught by the restart is a sandbox_error (the queue's workers retry those).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from service.executor import execute
from service.sandbox import open_sandbox
from service.schema import ExecuteRequest, Verdict

ROOT = Path(__file__).resolve().parents[2]
HELLO = ExecuteRequest.model_validate({"language": "python", "code": "print('hi')",
                                       "tests": [{"type": "stdio", "expected_stdout": "hi"}]})


def restart_dockerd() -> None:
    """Stop the engine (TERM to its pid file's process), then start it the one way the
    project does: scripts/setup.sh's docker_engine step, which waits until it answers."""
    pid = int(Path("/var/run/docker.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "dockerd did not stop"
        time.sleep(0.5)
    subprocess.run([str(ROOT / "scripts" / "setup.sh"), "docker_engine"], check=True,
                   timeout=120)


def test_engine_restart_under_a_warm_pool(settings, exec_config):
    box = open_sandbox(settings.model_copy(update={"pool_size": 2}), backend="docker")
    try:
        assert execute(HELLO, box, exec_config).verdict == Verdict.accepted
        restart_dockerd()
        results = [execute(HELLO, box, exec_config) for _ in range(6)]
        assert results[-1].status == "ok" and results[-1].verdict == Verdict.accepted
        assert all(r.status == "ok" for r in results[2:]), [r.error for r in results]
    finally:
        box.close()
