"""Queue throughput: a 1,000-job batch of small Python programs through Redis with 1, 2
and 4 workers, against the same programs run directly on the sandbox backend (1 thread)
in the same run. Also the latency overhead of the Redis hop and of HTTP for one job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis

from bench.execution import report
from service.client import ExecutionClient
from service.executor import execute, executor_config
from service.sandbox import open_sandbox
from service.schema import ExecuteRequest
from service.settings import Settings

RLEF = str(Path(sys.executable).parent / "rlef")
REDIS = os.environ.get("RLEF_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")


def jobs(n: int) -> list[ExecuteRequest]:
    return [ExecuteRequest.model_validate({
        "id": str(i), "language": "python", "code": f"print({i} * {i})\n",
        "tests": [{"type": "stdio", "expected_stdout": str(i * i)}]}) for i in range(n)]


def start_workers(n: int, backend: str) -> list[subprocess.Popen[bytes]]:
    procs = [subprocess.Popen([RLEF, "worker", "--redis-url", REDIS, "--backend", backend,
                               "--concurrency", "1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
             for _ in range(n)]
    r = redis.Redis.from_url(REDIS)
    deadline = time.monotonic() + 120
    while len(list(r.scan_iter("rlef:worker:*"))) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


def direct_rate(reqs: list[ExecuteRequest], backend: str, threads: int) -> float:
    settings = Settings(pool_size=threads)
    box = open_sandbox(settings, backend)
    exec_config = executor_config(settings)
    try:
        execute(reqs[0], box, exec_config)
        t = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            out = list(pool.map(lambda r: execute(r, box, exec_config), reqs))
        elapsed = time.perf_counter() - t
    finally:
        box.close()
    assert all(o.verdict == "accepted" for o in out)
    return len(reqs) / elapsed


def queue_rate(reqs: list[ExecuteRequest], workers: int, backend: str) -> float:
    redis.Redis.from_url(REDIS).flushdb()
    procs = start_workers(workers, backend)
    try:
        client = ExecutionClient(REDIS, batch_size=1000)
        client.execute_many(reqs[:20])  # warm
        t = time.perf_counter()
        out = client.execute_many(reqs)
        elapsed = time.perf_counter() - t
    finally:
        stop_workers(procs)
    assert [o.id for o in out] == [r.id for r in reqs]
    assert all(o.verdict == "accepted" for o in out)
    return len(reqs) / elapsed


def run(results: dict[str, Any], quick: bool = False, backend: str = "docker") -> None:
    reqs = jobs(300 if quick else 1000)
    base1 = direct_rate(reqs, backend, threads=1)
    base2 = direct_rate(reqs, backend, threads=2)
    print(f"direct {backend} backend: {base1:.0f} jobs/s (1 thread), {base2:.0f} jobs/s "
          f"(2 threads)")
    rates = {}
    for n in (1, 2, 4):
        rates[n] = queue_rate(reqs, n, backend)
        results[f"queue throughput, {n} workers"] = {
            "jobs_per_s": rates[n], "direct_1_thread": base1, "ratio": rates[n] / base1}
        print(f"{len(reqs)} jobs via Redis, {n} worker(s){'':<16} {rates[n]:7.0f} jobs/s  "
              f"direct(1 thread) {base1:7.0f} jobs/s  ratio {rates[n] / base1:5.2f}x")
    scaling = rates[2] / rates[1]
    results["queue scaling 2 workers / 1"] = {"ratio": scaling}
    print(f"{'scaling, 2 workers / 1 worker':<46} ratio {scaling:5.2f}x")
    hop_latency(results, backend)


def hop_latency(results: dict[str, Any], backend: str) -> None:
    """One job at a time: direct call vs the Redis hop vs HTTP over Redis."""
    from bench.execution import median_time

    req = jobs(1)[0]
    settings = Settings(pool_size=1)
    box = open_sandbox(settings, backend)
    exec_config = executor_config(settings)
    try:
        execute(req, box, exec_config)
        direct = median_time(lambda: execute(req, box, exec_config), 50)
    finally:
        box.close()
    redis.Redis.from_url(REDIS).flushdb()
    procs = start_workers(1, backend)
    try:
        client = ExecutionClient(REDIS)
        client.execute(req)
        via_redis = median_time(lambda: client.execute(req), 50)
    finally:
        stop_workers(procs)
    report(results, "1 job, through Redis (vs direct backend call)", via_redis, direct)
    results["redis hop overhead ms"] = (via_redis - direct) * 1000
    print(f"{'redis hop overhead (median)':<46} {(via_redis - direct) * 1000:9.2f} ms")
