"""SandboxFusion-style fan-out against rlef's own batch shape, each against a baseline
measured in the same run, on a real `rlef serve` (local backend, its own process).

  1. A C++ program with 100 tests: 100 single-test POST /run_code requests from 16 threads
     (as veRL sends them) / one POST /execute with the 100 tests.
  2. Python hello-world: one POST /run_code, request to answer / a bare `python3 main.py`.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.execution import CPP, HELLO, bare_python, median_time, report
from service.client import ExecutionClient, local_service
from service.schema import ExecuteRequest, StdioTest

TESTS = 100
THREADS = 16


def fresh_cpp() -> str:
    """The program with a new comment: each repetition pays its compile once."""
    return CPP + f"// {secrets.token_hex(8)}\n"


def run_code_fan_out(url: str, code: str) -> None:
    local = threading.local()

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=120)
        out = client.post(f"{url}/run_code", json={
            "code": code, "language": "cpp", "stdin": f"{i} {i}\n", "compile_timeout": 30,
            "run_timeout": 10}).json()
        if out["status"] != "Success" or out["run_result"]["stdout"] != f"{2 * i}\n":
            raise RuntimeError(f"/run_code answered {out}")

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(TESTS)))


def execute_batch(client: ExecutionClient, code: str) -> None:
    tests = [StdioTest(stdin=f"{i} {i}\n", expected_stdout=str(2 * i)) for i in range(TESTS)]
    res = client.execute(ExecuteRequest(language="cpp", code=code, tests=tests))
    if res.passed != TESTS:
        raise RuntimeError(f"/execute: {res.passed}/{TESTS} passed: {res.feedback[:500]}")


def hello_run_code(client: httpx.Client, url: str) -> None:
    out = client.post(f"{url}/run_code", json={"code": HELLO, "language": "python"}).json()
    if out["status"] != "Success":
        raise RuntimeError(f"/run_code answered {out}")


def run(results: dict[str, Any], quick: bool = False) -> None:
    repeat = 3 if quick else 7
    with tempfile.TemporaryDirectory() as d, \
            local_service(Path(d) / "serve.log", 4) as url:
        client = ExecutionClient(url)
        execute_batch(client, fresh_cpp())  # warm the pool and the compiler's page cache
        batch = median_time(lambda: execute_batch(client, fresh_cpp()), repeat)
        fan = median_time(lambda: run_code_fan_out(url, fresh_cpp()), repeat)
        report(results, f"C++ {TESTS} tests: {TESTS} /run_code x {THREADS} threads", fan, batch)
        print(f"{'   (baseline: one /execute with the 100 tests)':<46}")
        with httpx.Client(timeout=60) as http:
            hello_run_code(http, url)
            t = median_time(lambda: hello_run_code(http, url), repeat * 10)
        report(results, "python hello: /run_code request", t, bare_python(repeat * 10))


if __name__ == "__main__":
    run({})
