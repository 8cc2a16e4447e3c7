"""Soak: many jobs, hostile ones among them, through Redis and Docker workers. Afterwards
no container, process, temp dir or untimed Redis key is left. `make stress` runs 10,000
(RLEF_SOAK_JOBS); CI runs a few hundred.
"""

from __future__ import annotations

import os
import signal
import subprocess

import redis

import docker
from service import keys
from service.client import ExecutionClient
from service.sandbox.container import LABEL
from service.schema import ExecuteRequest, Verdict
from tests.integration.queue_helpers import Procs, fresh_db, workers_alive
from tests.integration.test_queue import assert_exactly_once

JOBS = int(os.environ.get("RLEF_SOAK_JOBS", "300"))
LIMITS = {"cpu_time_s": 1, "wall_time_s": 2, "memory_mb": 256, "output_kb": 64, "pids": 16}
HOSTILE = ["import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
           "x = bytearray(1 << 30)", "while True: pass",
           "import os, subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)\n"
           "open('/tmp/leftover', 'w').write('x')\nos.makedirs('/work/run/d/e', exist_ok=True)"]


def request(i: int) -> ExecuteRequest:
    hostile = i % 10 == 9
    code = HOSTILE[(i // 10) % len(HOSTILE)] if hostile else f"print({i} + 1)"
    return ExecuteRequest.model_validate({
        "id": f"soak-{i}", "language": "python", "code": code, "limits": LIMITS,
        "tests": [{"type": "stdio", "expected_stdout": str(i + 1)}]})


def sandbox_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "sleep 600" in line]


def test_soak_leaves_nothing_behind(tmp_path) -> None:
    url = fresh_db(6)
    procs = Procs(tmp_path)
    tmp_before = set(os.listdir("/tmp"))
    api_docker = docker.from_env()
    others = {c.id for c in api_docker.containers.list(all=True, filters={"label": LABEL})}
    try:
        workers = [procs.worker(url, backend="docker") for _ in range(2)]
        api = procs.api(url)
        workers_alive(url, 2)
        reqs = [request(i) for i in range(JOBS)]
        results = ExecutionClient(api, batch_size=100).execute_many(reqs)
        assert_exactly_once(results, reqs, url)
        for i, res in enumerate(results):
            assert res.status == "ok", res.error
            if i % 10 != 9:
                assert res.verdict == Verdict.accepted, (i, res.feedback)
            else:
                assert res.verdict != Verdict.accepted
        for w in workers:  # graceful stop: sandboxes are removed
            os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            assert w.wait(timeout=120) == 0
    finally:
        procs.stop()
    # other tests' pools may be open in this session: only this run's must be gone
    mine = {c.id for c in api_docker.containers.list(all=True, filters={"label": LABEL})}
    assert mine - others == set()
    assert sandbox_processes() == []
    assert not {n for n in set(os.listdir("/tmp")) - tmp_before if "leftover" in n}
    r = redis.Redis.from_url(url, decode_responses=True)
    untimed = [k for k in r.scan_iter("rlef:*")
               if r.ttl(k) == -1 and k not in (keys.JOBS, keys.STATS)]
    assert untimed == [], untimed
