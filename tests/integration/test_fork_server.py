"""The Python fork server (zygote): each test is a fresh fork of a pristine interpreter.

Nothing one test does to its interpreter reaches the next test, of the same job or of the
next; a program that kills or stops the zygote only affects its own run.
"""

import pytest

from service.schema import Verdict
from tests.conftest import stdio

LIMITS = {"cpu_time_s": 2, "wall_time_s": 4, "memory_mb": 256, "output_kb": 64, "pids": 16}

TAINT = ("import builtins, json, sys, os\n"
         "builtins.TAINT = 1\njson.TAINT = 1\nsys.modules['taint'] = json\n"
         "os.environ['TAINT'] = '1'\nsys.path.append('/tmp')\n"
         "open('/tmp/taint.py', 'w').write('X = 1')\n")
LOOK = ("import builtins, json, sys, os\n"
        "print(sorted(k for k, v in [('builtins', hasattr(builtins, 'TAINT')),"
        " ('json', hasattr(json, 'TAINT')), ('modules', 'taint' in sys.modules),"
        " ('environ', 'TAINT' in os.environ), ('path', '/tmp' in sys.path),"
        " ('file', os.path.exists('/tmp/taint.py'))] if v))\n")


@pytest.fixture
def run(hostile_run):
    return hostile_run


def test_no_state_crosses_tests_or_jobs(run):
    code = ("import sys\nif sys.stdin.read() == 'taint':\n"
            + "".join("    " + line + "\n" for line in TAINT.splitlines())
            + "    print('[]')\nelse:\n"
            + "".join("    " + line + "\n" for line in LOOK.splitlines()))
    res = run("python", code, [stdio("taint", "[]"), stdio("look", "[]")], limits=LIMITS)
    # /tmp is shared by the tests of one job (as in a single machine), never across jobs
    assert res.tests[0].verdict == Verdict.accepted
    assert res.tests[1].stdout.strip() in ("[]", "['file']"), res.tests[1].stdout
    again = run("python", LOOK, [stdio("", "[]")], limits=LIMITS)
    assert again.verdict == Verdict.accepted, again.tests[0].stdout


@pytest.mark.parametrize("attack", ["os.kill(os.getppid(), signal.SIGKILL)",
                                    "os.kill(os.getppid(), signal.SIGSTOP)",
                                    "os.kill(os.getppid(), signal.SIGTERM)"])
def test_attacking_the_zygote_only_hurts_the_attacker(run, attack):
    code = f"import os, signal, sys\nif sys.stdin.read() == 'attack':\n    {attack}\nprint('ok')\n"
    res = run("python", code, [stdio("attack", "ok"), stdio("", "ok"), stdio("", "ok")],
              limits=LIMITS)
    assert [t.verdict for t in res.tests[1:]] == [Verdict.accepted] * 2, res.feedback
    nxt = run("python", "print('ok')", [stdio("", "ok")], limits=LIMITS)
    assert nxt.verdict == Verdict.accepted


def test_python_semantics_match_a_fresh_interpreter(run):
    code = ("import sys, os\nprint(__name__, sys.argv[0], __file__, sys.path[0])\n"
            "print(sorted(os.environ))\nraise SystemExit('bye')\n")
    t = run("python", code, [stdio("", "")], limits=LIMITS).tests[0]
    lines = t.stdout.splitlines()
    assert lines[0] == "__main__ /work/build/main.py /work/build/main.py /work/build"
    assert "RLEF_NONCE" not in lines[1]
    assert t.exit_code == 1 and t.stderr.strip() == "bye"
