"""Every limit verdict, in both backends, with the service's limits doing the work."""

import pytest

from service.schema import Verdict
from tests.conftest import stdio

FAST = {"cpu_time_s": 1, "wall_time_s": 2, "memory_mb": 128, "output_kb": 64}


def one(run, language, code, **limits):
    return run(language, code, [stdio("", "x")], limits={**FAST, **limits}).tests[0]


def test_time_limit_cpu(run):
    t = one(run, "python", "while True: pass")
    assert t.verdict == Verdict.time_limit_exceeded
    assert t.cpu_time_s >= 0.9


def test_time_limit_threads_count_together(run):
    code = ("import threading\n"
            "def spin():\n    while True: pass\n"
            "for _ in range(4): threading.Thread(target=spin, daemon=True).start()\n"
            "threading.Event().wait()\n")
    t = one(run, "python", code, cpu_time_s=1, wall_time_s=5)
    assert t.verdict == Verdict.time_limit_exceeded


def test_time_limit_wall_sleep(run):
    t = one(run, "python", "import time\ntime.sleep(30)", wall_time_s=1)
    assert t.verdict == Verdict.time_limit_exceeded
    assert t.wall_time_s < 3


@pytest.mark.parametrize("language,code", [
    ("python", "x = bytearray(1 << 30)\nprint(len(x))"),
    ("python", "x = []\nwhile True: x.append(' ' * 10**6)"),
    ("cpp", "#include <vector>\nint main(){std::vector<long> v; while(true) v.push_back(1);}"),
    ("java", "public class Main { public static void main(String[] a) {"
             " java.util.List<long[]> l = new java.util.ArrayList<>();"
             " while (true) l.add(new long[1 << 20]); } }"),
    ("javascript", "const a = []; while (true) a.push(new Array(1e6).fill(1));"),
])
def test_memory_limit(run, language, code):
    t = one(run, language, code, cpu_time_s=10, wall_time_s=20)
    assert t.verdict == Verdict.memory_limit_exceeded, (t.stderr, t.signal, t.max_rss_kb)


def test_output_limit_cuts_the_program_off(run):
    t = one(run, "python", "while True: print('x' * 1000)", wall_time_s=10, output_kb=64)
    assert t.verdict == Verdict.output_limit_exceeded
    assert t.wall_time_s < 5
    assert len(t.stdout) <= 64 * 1024 + 100


def test_runtime_errors(run):
    t = one(run, "python", "raise ValueError('boom')")
    assert t.verdict == Verdict.runtime_error and "ValueError: boom" in t.message
    t = one(run, "c", "int main(){ int *p = 0; return *p; }")
    assert t.verdict == Verdict.runtime_error and t.signal == 11
    assert "SIGSEGV" in t.message
    t = one(run, "python", "import sys\nsys.exit(3)")
    assert t.verdict == Verdict.runtime_error and t.exit_code == 3
