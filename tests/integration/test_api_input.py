"""Bad input over real HTTP (raw bytes to a real `rlef-service serve`) is a clear 4xx with
a reason, never a 5xx: lone surrogates, deep nesting, non-finite numbers, chunked bodies
over the cap; and a Redis that went away is a 503, also for /healthz and /metrics."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest

from service.client import free_port
from service.cmdline import local_service
from tests.integration.queue_helpers import Procs
from tests.integration.test_worker_robust import CALL, HOSTILE

STDIO = '{"type": "stdio", "stdin": "hi", "expected_stdout": "hi"}'


def body(code: str = '"print(input())"', tests: str = STDIO, extra: str = "") -> bytes:
    return (f'{{"language": "python", "code": {code}, "tests": [{tests}]{extra}}}').encode()


def call(args: str = "[]", kwargs: str = "{}", expected: str = "1") -> str:
    return (f'{{"type": "call", "entry_point": "f", "args": {args}, "kwargs": {kwargs}, '
            f'"expected": {expected}}}')


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("api-input") / "service.log"
    with local_service(log, 1, env={"RLEF_MAX_BODY_MB": "1"}) as url:
        yield url


def raw_post(url: str, path: str, head: dict[str, str], chunks: list[bytes]) -> tuple[int, bytes]:
    """POST exactly these bytes (chunked when no Content-Length is given); the answer."""
    where = urlparse(url)
    reply = bytearray()
    with socket.create_connection((where.hostname, where.port), timeout=30) as s:
        def read() -> None:  # concurrently: a 413 comes (and the server closes) mid-body
            try:
                while data := s.recv(65536):
                    reply.extend(data)
            except OSError:
                pass
        reader = threading.Thread(target=read)
        reader.start()
        chunked = "Content-Length" not in head
        lines = [f"POST {path} HTTP/1.1", f"Host: {where.netloc}", "Connection: close",
                 "Content-Type: application/json", *(f"{k}: {v}" for k, v in head.items())]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        try:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            for c in chunks:
                s.sendall(b"%x\r\n%s\r\n" % (len(c), c) if chunked else c)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before reading it all: that is the point
        reader.join(timeout=30)
    status = int(reply.split(b" ", 2)[1])
    return status, bytes(reply.split(b"\r\n\r\n", 1)[1])


BAD = [
    ("surrogate-code", body(code='"\\ud800"'), "nicode"),
    ("surrogate-code-low", body(code='"print(1) # \\udfff"'), "nicode"),
    ("surrogate-stdin", body(tests='{"stdin": "\\ud800", "expected_stdout": "x"}'), "nicode"),
    ("surrogate-expected", body(tests='{"expected_stdout": "\\udc80"}'), "nicode"),
    ("surrogate-id", body(extra=', "id": "\\ud83d"'), "nicode"),
    ("surrogate-arg", body(tests=call(args='["\\ud800"]')), "nicode"),
    ("surrogate-kwarg-name", body(tests=call(kwargs='{"\\ud800": 1}')), "nicode"),
    ("surrogate-checker", body(tests='{"expected_stdout": "x", "checker": "program", '
                                     '"checker_code": "\\ud800"}'), "nicode"),
    ("args-300-deep", body(tests=call(args=f"[{nested(300)}]")), "nested"),
    ("expected-300-deep", body(tests=call(expected=nested(300))), "nested"),
    ("args-3000-deep", body(tests=call(args=f"[{nested(3000)}]")), "body"),
    ("nan-cpu", body(extra=', "limits": {"cpu_time_s": NaN}'), "cpu_time_s"),
    ("inf-cpu", body(extra=', "limits": {"cpu_time_s": Infinity}'), "cpu_time_s"),
    ("nan-wall", body(extra=', "limits": {"wall_time_s": NaN}'), "wall_time_s"),
    ("inf-memory", body(extra=', "limits": {"memory_mb": Infinity}'), "memory_mb"),
    ("neg-inf-output", body(extra=', "limits": {"output_kb": -Infinity}'), "output_kb"),
    ("nan-tolerance", body(tests='{"expected_stdout": "1", "checker": "float", '
                                 '"abs_tol": NaN}'), "abs_tol"),
    ("inf-tolerance", body(tests=call().replace('"f",', '"f", "rel_tol": Infinity,')),
     "rel_tol"),
    ("huge-int-arg", body(tests=call(args=f"[{'9' * 5000}]")), "body"),
    ("file-outside", body(extra=', "files": {"../x": "aGk="}'), "relative path"),
    ("file-absolute", body(extra=', "files": {"/etc/passwd": "aGk="}'), "relative path"),
    ("file-nul", body(extra=', "files": {"a\\u0000b": "aGk="}'), "relative path"),
    ("fetch-outside", body(extra=', "fetch_files": ["a/../../b"]'), "relative path"),
]


@pytest.mark.parametrize("raw,needle", [pytest.param(b, n, id=i) for i, b, n in BAD])
def test_bad_input_is_a_4xx_with_a_reason(api, raw, needle):
    status, answer = raw_post(api, "/execute", {"Content-Length": str(len(raw))}, [raw])
    assert 400 <= status < 500, (status, answer[:300])
    detail = json.loads(answer)["detail"]
    assert needle in json.dumps(detail), detail


def test_bad_input_in_a_batch_names_the_request(api):
    raw = b'{"requests": [' + body() + b", " + body(code='"\\ud800"') + b"]}"
    status, answer = raw_post(api, "/batches", {"Content-Length": str(len(raw))}, [raw])
    assert status == 422 and "requests[1]" in answer.decode(), answer[:300]


def test_chunked_body_is_counted_against_the_cap(api):
    head, tail = body(extra=', "id": "').split(b', "id": "')[0] + b', "id": "', b'"}'
    chunks = [head, *[b"x" * 65536] * 40, tail]  # 2.6 MB, no Content-Length, cap 1 MB
    status, answer = raw_post(api, "/execute", {}, chunks)
    assert status == 413, (status, answer[:300])
    assert "bytes" in json.loads(answer)["detail"]
    status, answer = raw_post(api, "/execute", {}, [body()[:10], body()[10:]])
    assert status == 200 and json.loads(answer)["verdict"] == "accepted"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_results_are_verdicts_not_500(api, name):
    r = httpx.post(f"{api}/execute", json={**CALL, "code": HOSTILE[name]}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["status"] == "ok" and r.json()["verdict"] == "wrong_answer", r.text[:300]


def test_redis_down_is_503_everywhere(tmp_path):
    procs = Procs(tmp_path)
    try:
        port = free_port()
        (tmp_path / "redis").mkdir()
        server = procs.redis_server(port, tmp_path / "redis")  # our own, never the shared one
        api = procs.api(f"redis://127.0.0.1:{port}/0")
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        for method, path in [("GET", "/healthz"), ("GET", "/metrics"), ("POST", "/execute"),
                             ("GET", "/batches/abc"), ("POST", "/batches")]:
            raw = body() if path == "/execute" else b'{"requests": [' + body() + b"]}"
            r = httpx.request(method, f"{api}{path}", timeout=30,
                              content=raw if method == "POST" else None,
                              headers={"content-type": "application/json"})
            assert r.status_code == 503, (path, r.status_code, r.text[:300])
            assert "Redis" in r.json()["detail"], (path, r.text[:300])
    finally:
        procs.stop()
