"""SandboxFusion-compatible /run_code against a real rlef service, through the PyPI
`sandbox-fusion` client and veRL's own sandbox_fusion scoring module (APPS problems from
shared/data): every field and status of the protocol."""

from __future__ import annotations

import ast
import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.sandboxfusion import from_result
from service.schema import ExecuteResult
from tests.integration.queue_helpers import Procs, fresh_db, workers_alive
from tests.integration.rlef_server import rlef_serve

APPS = Path(__file__).resolve().parents[3] / "shared/data/mapcoder/APPS_selected150.jsonl"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with rlef_serve(tmp_path_factory.mktemp("svc") / "serve.log", "--pool-size", "2",
                    env={"RLEF_MAX_OUTPUT_KB": "256"}) as u:
        yield u


def run(url: str, code: str, language: str = "python", **kw: Any) -> Any:
    from sandbox_fusion import RunCodeRequest, run_code

    return run_code(RunCodeRequest(code=code, language=language, **kw), endpoint=url,
                    max_attempts=1)


def test_ping(url: str) -> None:
    resp = httpx.get(f"{url}/v1/ping")
    assert resp.status_code == 200 and resp.json() == "pong"


def test_success_is_byte_exact(url: str) -> None:
    code = "import sys\ndata = sys.stdin.read()\nsys.stdout.write(data.upper() + '  \\n\\n')\n" \
           "sys.stderr.write('note\\n')\n"
    res = run(url, code, stdin="a b\n c\n")
    assert res.status == "Success" and res.compile_result is None
    assert res.run_result.status == "Finished" and res.run_result.return_code == 0
    assert res.run_result.stdout == "A B\n C\n  \n\n"
    assert res.run_result.stderr == "note\n"
    assert res.run_result.execution_time is not None and res.files == {}


def test_nonzero_exit_is_failed(url: str) -> None:
    res = run(url, "print('partial')\nraise SystemExit(3)\n")
    assert res.status == "Failed" and res.run_result.return_code == 3
    assert res.run_result.stdout == "partial\n"


def test_time_limit(url: str) -> None:
    res = run(url, "while True:\n    pass\n", run_timeout=1)
    assert res.status == "Failed" and res.run_result.status == "TimeLimitExceeded"
    assert res.run_result.return_code is None


def test_memory_and_output_limits_are_failed_with_a_reason(url: str) -> None:
    body = {"code": "x = bytearray(600 * 1024 * 1024)\nprint(len(x))\n",
            "language": "python", "memory_limit_MB": 128}
    out = httpx.post(f"{url}/run_code", json=body, timeout=60).json()
    assert out["status"] == "Failed" and out["run_result"]["return_code"] != 0
    assert "memory" in out["message"]
    flood = run(url, "import sys\nsys.stdout.write('x' * (2 << 20))\n")
    assert flood.status == "Failed" and flood.run_result.return_code != 0
    assert "output" in flood.message


def test_compiled_language(url: str) -> None:
    ok = run(url, '#include <cstdio>\nint main(){int a;scanf("%d",&a);printf("%d\\n",a*2);}',
             "cpp", stdin="21\n")
    assert ok.status == "Success" and ok.run_result.stdout == "42\n"
    assert ok.compile_result.status == "Finished" and ok.compile_result.return_code == 0
    bad = run(url, "int main( {", "cpp")
    assert bad.status == "Failed" and bad.run_result is None
    assert bad.compile_result.status == "Finished" and bad.compile_result.return_code != 0
    assert "error" in bad.compile_result.stderr


@pytest.mark.parametrize(("language", "code"), [
    ("nodejs", "console.log('hi')"),
    ("bash", "echo hi"),
    ("go", 'package main\nimport "fmt"\nfunc main() { fmt.Println("hi") }'),
    ("java", 'public class Main { public static void main(String[] a) '
             '{ System.out.println("hi"); } }'),
    ("rust", 'fn main() { println!("hi"); }'),
    ("sql", "SELECT 'hi';"),
])
def test_sandboxfusion_language_ids(url: str, language: str, code: str) -> None:
    res = run(url, code, language)
    assert res.status == "Success", res
    assert res.run_result.stdout == "hi\n"


def test_unknown_language_and_extra_fields(url: str) -> None:
    resp = httpx.post(f"{url}/run_code", json={"code": "<?php echo 1;", "language": "php"})
    assert resp.status_code == 422 and "php" in str(resp.json()["detail"])
    resp = httpx.post(f"{url}/run_code", json={"code": "print(1)", "language": "python",
                                               "args": [], "extra_field": {"x": 1}})
    assert resp.status_code == 200 and resp.json()["status"] == "Success"


def test_files_in_and_out(url: str) -> None:
    data = base64.b64encode(b"3 4\n").decode()
    code = "a, b = map(int, open('input/data.txt').read().split())\n" \
           "open('out.txt', 'w').write(str(a * b))\nprint('done')\n"
    res = run(url, code, files={"input/data.txt": data}, fetch_files=["out.txt"])
    assert res.status == "Success", res
    assert base64.b64decode(res.files["out.txt"]) == b"12"


def test_sandbox_error_is_never_a_program_failure() -> None:
    res = from_result(ExecuteResult(status="sandbox_error", error="no sandbox"), False)
    assert res.status == "SandboxError" and res.run_result is None
    assert res.message == "no sandbox"


def test_run_concurrent_fan_out(url: str) -> None:
    from sandbox_fusion import RunCodeRequest, run_code, run_concurrent

    reqs = [RunCodeRequest(code="print(int(input()) ** 2)", language="python", stdin=f"{i}\n")
            for i in range(24)]
    out = run_concurrent(run_code, kwargs=[{"request": r, "endpoint": url} for r in reqs],
                         concurrency=16)
    assert [o.run_result.stdout for o in out] == [f"{i * i}\n" for i in range(24)]


def test_overload_answers_504_before_the_callers_deadline(tmp_path: Path) -> None:
    """veRL gives up after compile + run + 10 s and retries only a 504: a request that
    cannot start in time is answered 504 first."""
    with rlef_serve(tmp_path / "serve.log", "--pool-size", "1") as url:
        body = {"code": "import time\ntime.sleep(1.5)\n", "language": "python",
                "compile_timeout": 1, "run_timeout": 2}
        statuses: list[int] = []

        def call() -> None:
            statuses.append(httpx.post(f"{url}/run_code", json=body, timeout=13).status_code)

        threads = [threading.Thread(target=call) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 200 in statuses and 504 in statuses, statuses
        assert set(statuses) <= {200, 504}


def apps_in_outs(row: dict[str, Any]) -> dict[str, Any]:
    """An APPS problem as veRL's code data sets store it (strings in, strings out)."""
    def lit(x: Any) -> Any:
        return ast.literal_eval(x) if isinstance(x, str) else x

    cases = lit(row["sample_io"]) + lit(row["test_list"])
    fn = row["starter_code"].split("def ", 1)[1].split("(")[0] if row["starter_code"] else None
    out: dict[str, Any] = {"inputs": [], "outputs": []}
    for c in cases:
        if fn:
            args = [lit(line) for line in c["input"].split("\n")]
            want = c["output"][0] if len(c["output"]) == 1 else c["output"]
            out["inputs"].append("\n".join(json.dumps(a) for a in args))
            out["outputs"].append(json.dumps(want) if isinstance(want, (list, dict, bool))
                                  else str(want))
        else:
            out["inputs"].append(c["input"])
            out["outputs"].append("".join(c["output"]))
    if fn:
        out["fn_name"] = fn
    return out


REFERENCE = {
    "1607": "s = input().strip()\nn = len(s)\nprint(sum(1 for i in range(n) for j in "
            "range(i + 1, n) for k in range(j + 1, n) if s[i] + s[j] + s[k] == 'QAQ'))\n",
    "4465": "def super_size(n):\n    return int(''.join(sorted(str(n), reverse=True)))\n",
    "1647": "def next_bigger(n):\n    d = list(str(n))\n    i = len(d) - 2\n"
            "    while i >= 0 and d[i] >= d[i + 1]:\n        i -= 1\n    if i < 0:\n"
            "        return -1\n    j = len(d) - 1\n    while d[j] <= d[i]:\n        j -= 1\n"
            "    d[i], d[j] = d[j], d[i]\n    d[i + 1:] = reversed(d[i + 1:])\n"
            "    return int(''.join(d))\n",
}
WRONG = {
    "1607": "print(input().count('QAQ'))\n",
    "4465": "def super_size(n):\n    return n\n",
    "1647": "def next_bigger(n):\n    return n + 9\n",
}


@pytest.mark.parametrize("problem", sorted(REFERENCE))
def test_verl_scores_apps_through_rlef(url: str, problem: str) -> None:
    from verl.utils.reward_score.sandbox_fusion import compute_score

    row = next(json.loads(x) for x in APPS.read_text().splitlines()
               if str(json.loads(x)["id"]) == problem)
    tests = apps_in_outs(row)

    def score(code: str) -> float:
        value, meta = compute_score(f"{url}/run_code", None, 1024, f"```python\n{code}```",
                                    json.dumps(tests))
        assert all(m.get("api_request_error") is None for m in meta), meta[:2]
        return float(value)

    assert score(REFERENCE[problem]) == 1.0
    assert score(WRONG[problem]) < 1.0


def test_through_the_queue(procs: Procs) -> None:
    """The same protocol when the API fronts Redis and the job runs on a worker."""
    redis_url = fresh_db(13)
    procs.worker(redis_url)
    workers_alive(redis_url, 1)
    api = procs.api(redis_url)
    data = base64.b64encode(b"6 7\n").decode()
    code = "a, b = map(int, open('in.txt').read().split())\nopen('out.txt', 'w').write(" \
           "str(a * b))\nprint(a * b, end='  ')\n"
    res = run(api, code, files={"in.txt": data}, fetch_files=["out.txt", "missing.txt"])
    assert res.status == "Success" and res.run_result.stdout == "42  "
    assert res.files == {"out.txt": base64.b64encode(b"42").decode()}
    bad = run(api, "int main( {", "cpp")
    assert bad.status == "Failed" and bad.run_result is None
    assert bad.compile_result.return_code not in (0, None)
