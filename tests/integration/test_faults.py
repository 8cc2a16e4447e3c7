"""Infrastructure faults: a sandbox container killed from outside mid-test, a full work
dir. Nothing is lost, nothing is reported twice, the pool heals itself.
"""

from __future__ import annotations

import threading
import time

import docker
from service.client import ExecutionClient
from service.executor import execute
from service.sandbox.container import LABEL
from service.schema import ExecuteRequest, Verdict
from tests.conftest import stdio
from tests.integration.queue_helpers import fresh_db, workers_alive
from tests.integration.test_queue import assert_exactly_once

SLOW = ExecuteRequest.model_validate({"language": "python", "tests": [stdio("", "done")],
                                      "code": "import time\ntime.sleep(2)\nprint('done')\n"})


def sandbox_ids() -> set[str]:
    return {c.id for c in docker.from_env().containers.list(filters={"label": LABEL})}


def kill_busy_container(pool_label: str | None = None, after_s: float = 0.7,
                        spare: frozenset[str] = frozenset()) -> list[str]:
    """docker kill every sandbox container of the pool (or all rlef ones but `spare`:
    other tests' pools) after a delay."""
    time.sleep(after_s)
    api = docker.from_env()
    flt = {"label": f"{LABEL}={pool_label}" if pool_label else LABEL}
    killed = []
    for c in api.containers.list(filters=flt):
        if c.id not in spare:
            c.kill()
            killed.append(c.short_id)
    return killed


def test_container_killed_mid_test_direct(settings, exec_config):
    from service.sandbox import open_sandbox

    box = open_sandbox(settings.model_copy(update={"pool_size": 1}), backend="docker")
    try:
        killer = threading.Thread(target=kill_busy_container, args=(box.pool_id,))
        killer.start()
        res = execute(SLOW, box, exec_config)
        killer.join()
        assert res.status == "sandbox_error" and res.verdict != Verdict.accepted
        again = execute(SLOW, box, exec_config)  # the pool replaced the container
        assert again.status == "ok" and again.verdict == Verdict.accepted, again.error
    finally:
        box.close()


def test_container_killed_mid_job_is_retried_through_the_queue(procs):
    url = fresh_db(5)
    others = frozenset(sandbox_ids())
    procs.worker(url, backend="docker")
    api = procs.api(url)
    workers_alive(url, 1)
    reqs = [SLOW.model_copy(update={"id": f"slow-{i}"}) for i in range(2)]
    killer = threading.Thread(target=kill_busy_container,
                              kwargs={"after_s": 1.0, "spare": others})
    killer.start()
    results = ExecutionClient(api).execute_many(reqs)
    killer.join()
    assert_exactly_once(results, reqs, url)
    assert [r.verdict for r in results] == [Verdict.accepted] * 2, [r.error for r in results]


def test_full_work_dir(run):
    """Filling /work and /tmp ends in an error for that test only; the next one runs."""
    fill = ("import os\nfor d in ('/work/run', '/tmp', '/dev/shm'):\n"
            "    try:\n        with open(d + '/fill', 'wb') as f:\n"
            "            while True: f.write(b'x' * (1 << 20))\n"
            "    except OSError as e: print(d, e.errno)\n")
    limits = {"cpu_time_s": 5, "wall_time_s": 10, "memory_mb": 256, "output_kb": 64}
    res = run("python", fill, [stdio("", "x"), stdio("", "x")], limits=limits)
    assert all(t.verdict in (Verdict.wrong_answer, Verdict.runtime_error,
                             Verdict.output_limit_exceeded) for t in res.tests), res.feedback
    ok = run("python", "print('x')", [stdio("", "x")])
    assert ok.verdict == Verdict.accepted
