"""Bounded load on loopback: concurrent clients send a mix of correct, wrong and hostile
programs to a real `rlef serve`. Every benign verdict right, no 5xx, p99 latency printed,
the server's memory and open files flat afterwards. `make stress` runs it at full size
(RLEF_LOAD_CLIENTS=50, RLEF_LOAD_SECONDS=60).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from pathlib import Path

import httpx

from service.client import local_service

CLIENTS = int(os.environ.get("RLEF_LOAD_CLIENTS", "12"))
SECONDS = float(os.environ.get("RLEF_LOAD_SECONDS", "15"))
LIMITS = {"cpu_time_s": 1, "wall_time_s": 2, "memory_mb": 256, "output_kb": 64, "pids": 16}

MIX = [  # (code, expected verdict or None for "any contained verdict")
    ("print(int(input()) * 2)", "accepted"),
    ("print(int(input()) * 3)", "wrong_answer"),
    ("raise SystemExit(3)", "runtime_error"),
    ("while True: pass", "time_limit_exceeded"),
    ("x = bytearray(1 << 30)", "memory_limit_exceeded"),
    ("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass", None),
    ("print('y' * (1 << 24))", "output_limit_exceeded"),
    ("import socket\nsocket.create_connection(('127.0.0.1', 6379), timeout=1)\nprint(42)",
     "runtime_error"),
]


def server_stats(pid: int) -> tuple[int, int]:
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
               .splitlines() if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def client(base: str, deadline: float, rng: random.Random, out: list) -> None:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        while time.monotonic() < deadline:
            code, expected = rng.choice(MIX)
            body = {"language": "python", "code": code, "limits": LIMITS,
                    "tests": [{"type": "stdio", "stdin": "21\n", "expected_stdout": "42"}]}
            t = time.perf_counter()
            resp = await http.post("/execute", json=body)
            verdict = resp.json().get("verdict") if resp.status_code == 200 else None
            out.append((resp.status_code, expected, verdict, time.perf_counter() - t))


async def load(base: str) -> list:  # type: ignore[type-arg]
    out: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + SECONDS
    await asyncio.gather(*(client(base, deadline, random.Random(i), out)
                           for i in range(CLIENTS)))
    return out


def test_load_mixed_programs(tmp_path: Path) -> None:
    with local_service(tmp_path / "service.log", pool_size=2) as base:
        log = (tmp_path / "service.log").read_text()
        pid = int(re.search(r"Started server process \[(\d+)\]", log).group(1))  # type: ignore[union-attr]
        asyncio.run(load_warm(base))
        before = server_stats(pid)
        out = asyncio.run(load(base))
        time.sleep(1)
        after = server_stats(pid)
    statuses = {s for s, *_ in out}
    assert statuses == {200}, statuses
    wrong = [(e, v) for _, e, v, _ in out if e is not None and e != v]
    assert not wrong, wrong[:5]
    latencies = sorted(t for *_, t in out)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(f"\n{len(out)} jobs, {CLIENTS} clients, {SECONDS:.0f} s: p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms; server RSS {before[0] // 1024} -> {after[0] // 1024} MB, "
          f"open fds {before[1]} -> {after[1]}")
    assert after[0] < before[0] * 1.3 + 20_000  # kB: flat, allowing allocator noise
    assert after[1] <= before[1] + 5


async def load_warm(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for code, _ in MIX:
            await http.post("/execute", json={"language": "python", "code": code,
                                              "limits": LIMITS, "tests": [
                                                  {"type": "stdio", "stdin": "21\n",
                                                   "expected_stdout": "42"}]})
