"""The Docker engine restarted under a warm pool (run last: every container dies with it).

The pool notices its dead sandboxes, relaunches them once the engine is back, and jobs run
again; a job caught by the restart is a sandbox_error (the queue's workers retry those).
"""

from __future__ import annotations

import subprocess
import time

import docker
from service.executor import execute
from service.sandbox import open_sandbox
from service.schema import ExecuteRequest, Verdict

HELLO = ExecuteRequest.model_validate({"language": "python", "code": "print('hi')",
                                       "tests": [{"type": "stdio", "expected_stdout": "hi"}]})


def engine_up(timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            docker.from_env(timeout=5).ping()
            return True
        except docker.errors.DockerException:
            time.sleep(0.5)
    return False


def restart_dockerd() -> None:
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=False)
    deadline = time.monotonic() + 60
    while subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "dockerd did not stop"
        time.sleep(0.5)
    with open("/tmp/rlef-dockerd.log", "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    assert engine_up(90), "dockerd did not come back"


def test_engine_restart_under_a_warm_pool(settings, policy):
    box = open_sandbox(settings.model_copy(update={"pool_size": 2}), backend="docker")
    try:
        assert execute(HELLO, box, policy).verdict == Verdict.accepted
        restart_dockerd()
        results = [execute(HELLO, box, policy) for _ in range(6)]
        assert results[-1].status == "ok" and results[-1].verdict == Verdict.accepted
        assert all(r.status == "ok" for r in results[2:]), [r.error for r in results]
    finally:
        box.close()
