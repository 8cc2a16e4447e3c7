"""Peak RSS of the API and of a worker over a long run (10,000 jobs; fewer with --quick).

RSS is sampled from /proc every 0.5 s. Flat means: the last quarter's peak is within 10%
of the first quarter's (after warm-up), so memory does not grow with the job count.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from bench.throughput import REDIS, jobs, start_workers, stop_workers
from service.client import ExecutionClient, spawn_service


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.samples = pids, {k: [] for k in pids}  # type: dict[str, list[int]]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for name, pid in self.pids.items():
                try:
                    self.samples[name].append(rss_kb(pid))
                except OSError:
                    pass


def run(results: dict[str, Any], quick: bool = False, backend: str = "docker") -> None:
    n = 2000 if quick else 10000
    redis.Redis.from_url(REDIS).flushdb()
    workers = start_workers(1, backend)
    api, url = spawn_service(Path(tempfile.mkdtemp()) / "api.log", "--redis-url", REDIS)
    sampler = Sampler({"api": api.pid, "worker": workers[0].pid})
    try:
        client = ExecutionClient(url, batch_size=500)
        client.execute_many(jobs(50))  # warm-up before the first sample counts
        sampler.start()
        t = time.perf_counter()
        out = client.execute_many(jobs(n))
        elapsed = time.perf_counter() - t
        assert all(o.verdict == "accepted" for o in out)
    finally:
        sampler.stop.set()
        os.killpg(api.pid, signal.SIGTERM)
        api.wait(timeout=30)
        stop_workers(workers)
    for name, samples in sampler.samples.items():
        q = max(1, len(samples) // 4)
        first, last = max(samples[:q]), max(samples[-q:])
        growth = last / first
        results[f"memory, {name} RSS over {n} jobs"] = {
            "first_quarter_peak_kb": first, "last_quarter_peak_kb": last, "ratio": growth}
        print(f"{f'{name} peak RSS, {n} jobs ({elapsed:.0f} s)':<46} {last / 1024:9.1f} MB  "
              f"first quarter {first / 1024:8.1f} MB  ratio {growth:5.2f}x")
