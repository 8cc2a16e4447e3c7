"""The compile cache with real sandboxes: a fan-out of one request per test compiles once,
hits run the cached binary, compile errors are cached, the cache stays bounded."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

from service.compile_cache import CACHE, CompileCache, Entry
from service.executor import ExecutorConfig, execute
from service.sandbox.base import Sandbox
from service.schema import CompileResult, ExecuteRequest, StdioTest, Verdict

DOUBLE = '#include <cstdio>\nint main(){{long a;scanf("%ld",&a);printf("%ld\\n",a*2);}}' \
         "// {tag}\n"


def job(code: str, n: int, language: str = "cpp", **kw: object) -> ExecuteRequest:
    return ExecuteRequest(language=language, code=code,  # type: ignore[arg-type]
                          tests=[StdioTest(stdin=f"{n}\n", expected_stdout=str(2 * n))], **kw)


def test_fan_out_compiles_once(local_sandbox: Sandbox, exec_config: ExecutorConfig) -> None:
    code = DOUBLE.format(tag=secrets.token_hex(8))
    misses, hits = CACHE.misses, CACHE.hits
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: execute(job(code, n), local_sandbox, exec_config),
                                range(16)))
    assert all(r.verdict == Verdict.accepted for r in results), results[0]
    assert CACHE.misses == misses + 1 and CACHE.hits == hits + 15
    assert sum(r.compile.status == "ok" for r in results) == 16


def test_files_are_part_of_the_key(local_sandbox: Sandbox, exec_config: ExecutorConfig) -> None:
    import base64

    code = '#include "k.h"\n#include <cstdio>\nint main(){printf("%d\\n", K);}' \
           f"// {secrets.token_hex(8)}\n"
    for k in (1, 2):
        files = {"k.h": base64.b64encode(f"#define K {k}\n".encode()).decode()}
        req = ExecuteRequest(language="cpp", code=code, files=files,
                             tests=[StdioTest(expected_stdout=str(k))])
        assert execute(req, local_sandbox, exec_config).verdict == Verdict.accepted


def test_compile_error_is_cached(local_sandbox: Sandbox, exec_config: ExecutorConfig) -> None:
    code = f"int main( {{ // {secrets.token_hex(8)}\n"
    first = execute(job(code, 1), local_sandbox, exec_config)
    hits = CACHE.hits
    second = execute(job(code, 1), local_sandbox, exec_config)
    assert first.verdict == second.verdict == Verdict.compile_error
    assert second.compile == first.compile and CACHE.hits == hits + 1
    assert first.compile.exit_code not in (0, None)


def test_bounded_least_recently_used_out() -> None:
    cache = CompileCache(max_entries=2, max_bytes=10_000)
    ok = CompileResult(status="ok")
    for key in ("a", "b"):
        cache.put(key, Entry(ok, {"main": b"x" * 100}))
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", Entry(ok, {"main": b"x" * 100}))
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    cache.put("big", Entry(ok, {"main": b"x" * 20_000}))  # over the whole budget: not kept
    assert cache.get("big") is None
    cache.put("d", Entry(ok, {"main": b"x" * 9_500}))
    assert cache.get("a") is None and cache.get("c") is None and cache.get("d")


def test_a_compile_cut_short_is_not_cached(local_sandbox: Sandbox,
                                           exec_config: ExecutorConfig) -> None:
    code = DOUBLE.format(tag=secrets.token_hex(8))
    hurried = execute(job(code, 2, compile_timeout_s=0.01), local_sandbox, exec_config)
    assert hurried.verdict == Verdict.compile_error and hurried.compile.timed_out
    assert execute(job(code, 2), local_sandbox, exec_config).verdict == Verdict.accepted
