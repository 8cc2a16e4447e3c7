"""A real `rlef worker` on a real Redis goes on consuming whatever a job does to it.

Hostile programs whose output used to raise in the host judge (and silently killed the
job thread: every later job timed out while the heartbeat said the worker was live), and
a stream entry from a foreign producer that is not a job at all.
"""

from __future__ import annotations

import ctypes
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis

from service import keys
from service.client import ExecutionClient
from service.executor import executor_config
from service.schema import ExecuteRequest
from service.settings import Settings
from service.worker import Worker, consumer_name
from service.worker_store import WorkerStore
from tests.integration.queue_helpers import fresh_db, workers_alive

CALL = {"language": "python", "tests": [{"type": "call", "entry_point": "f", "expected": 1.5}]}
HOSTILE = {
    # float() of it overflows where a float is expected
    "huge-int-for-float": "def f():\n    return 10**400\n",
    # 5001 digits: beyond the host's int-from-text limit
    "int-5000-digits": "import sys\nsys.set_int_max_str_digits(0)\n\ndef f():\n"
                       "    return 10**5000\n",
    # deeper than the host's JSON parser recursion
    "nested-5000": "import sys\nsys.setrecursionlimit(100000)\n\ndef f():\n    x = []\n"
                   "    for _ in range(5000):\n        x = [x]\n    return x\n",
}
BENIGN = {"language": "python", "code": "print(input())",
          "tests": [{"type": "stdio", "stdin": "hi", "expected_stdout": "hi"}]}


def run_batch(api: str, requests: list[dict[str, Any]], timeout_s: float) -> list[dict]:
    created = httpx.post(f"{api}/batches", json={"requests": requests}, timeout=30)
    assert created.status_code == 200, created.text
    batch = created.json()["id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = httpx.get(f"{api}/batches/{batch}/results", params={"wait": 5}, timeout=30).json()
        if out["done"]:
            return list(out["results"])
    pytest.fail(f"batch not finished in {timeout_s}s: the worker stopped consuming")


def heartbeats(url: str) -> list[dict[str, Any]]:
    r = redis.Redis.from_url(url, decode_responses=True)
    return [json.loads(r.get(k) or "{}") for k in r.scan_iter(keys.WORKER_GLOB)]


def test_hostile_results_do_not_stop_the_worker(procs):
    url = fresh_db(11)
    procs.worker(url, concurrency=1, RLEF_VISIBILITY_TIMEOUT_S="3")
    api = procs.api(url)
    workers_alive(url, 1)
    hostile = [{**CALL, "id": name, "code": code} for name, code in HOSTILE.items()]
    results = run_batch(api, [*hostile, {**BENIGN, "id": "benign"}], timeout_s=90)
    by_id = {r["id"]: r for r in results}
    for name in HOSTILE:
        assert by_id[name]["status"] == "ok", by_id[name]["error"]
        assert by_id[name]["verdict"] in ("wrong_answer", "runtime_error"), by_id[name]
    assert by_id["benign"]["verdict"] == "accepted"
    assert [b.get("threads") for b in heartbeats(url)] == [1]
    # and it still takes jobs afterwards
    again = run_batch(api, [{**BENIGN, "id": "after"}], timeout_s=30)
    assert again[0]["verdict"] == "accepted"


def test_an_entry_that_is_not_a_job_is_dropped(procs):
    url = fresh_db(12)
    r = redis.Redis.from_url(url, decode_responses=True)
    r.xadd(keys.JOBS, {"from": "a foreign producer"})
    r.xadd(keys.JOBS, {"b": "x", "i": "not-an-int", "r": "{}"})
    procs.worker(url, concurrency=1)
    api = procs.api(url)
    workers_alive(url, 1)
    results = run_batch(api, [{**BENIGN, "id": "benign"}], timeout_s=30)
    assert results[0]["verdict"] == "accepted"
    deadline = time.monotonic() + 10
    while r.xlen(keys.JOBS) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.xlen(keys.JOBS) == 0  # acked and deleted, not left to poison reclaims
    assert [b.get("threads") for b in heartbeats(url)] == [1]


def kill_thread(name: str) -> None:
    """Fault injection: end a thread of this process as an uncaught exception would."""
    thread = next(t for t in threading.enumerate() if t.name == name)
    assert thread.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                               ctypes.py_object(SystemExit))
    thread.join(timeout=10)
    assert not thread.is_alive()


@contextmanager
def in_process_worker(url: str, sandbox: Any, settings: Settings) -> Iterator[Worker]:
    worker = Worker(WorkerStore(url, consumer_name()), sandbox, executor_config(settings),
                    concurrency=1, heartbeat_s=0.2, settings=settings)
    runner = threading.Thread(target=worker.run, name="h1-worker", daemon=True)
    runner.start()
    try:
        workers_alive(url, 1)
        yield worker
    finally:
        worker.stop.set()
        runner.join(timeout=30)


def run_direct(url: str, req: ExecuteRequest, timeout_s: float = 30) -> Any:
    """Through Redis with no API in between (the client's redis:// mode)."""
    out: dict[str, Any] = {}
    client = threading.Thread(
        target=lambda: out.update(r=ExecutionClient(url).execute_many([req])), daemon=True)
    client.start()
    client.join(timeout=timeout_s)
    assert "r" in out, "no job thread took the job"
    return out["r"][0]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_job_thread_is_replaced(local_sandbox):
    url = fresh_db(13)
    with in_process_worker(url, local_sandbox, Settings(pool_size=1)) as worker:
        kill_thread("job-0")  # silently, as a thread dies: nothing takes jobs any more
        res = run_direct(url, ExecuteRequest.model_validate({**BENIGN, "id": "after-death"}))
        assert res.verdict == "accepted"
        assert worker.restarts == 1 and [b.get("threads") for b in heartbeats(url)] == [1]


def test_jobs_written_to_redis_directly_are_held_to_the_maxima(local_sandbox):
    url = fresh_db(14)
    settings = Settings(pool_size=1, max_cpu_time_s=10, max_tests=3)
    with in_process_worker(url, local_sandbox, settings):
        greedy = ExecuteRequest.model_validate({**BENIGN, "limits": {"cpu_time_s": 20}})
        res = run_direct(url, greedy)
        assert res.status == "sandbox_error" and "exceeds the server maximum" in res.error
        assert "attempts" not in res.error  # refused once, not retried
        many = ExecuteRequest.model_validate({**BENIGN, "tests": BENIGN["tests"] * 4})
        assert "at most 3" in run_direct(url, many).error
        assert run_direct(url, ExecuteRequest.model_validate(BENIGN)).verdict == "accepted"
