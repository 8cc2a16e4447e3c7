"""Programs that try to pass without solving: every one is judged a failure, on both backends.

A exec_config optimised against the service will find these; each case is a known trick.
"""

import pytest

from service.schema import Verdict
from tests.conftest import stdio

ASSERT = {"type": "assert", "code": "assert f(1) == 2\nassert f(5) == 10\n"}
CALL = {"type": "call", "entry_point": "f", "args": [1], "expected": 2}

EXIT_EARLY = {
    "os._exit(0) at import": "import os\nos._exit(0)\n",
    "sys.exit(0) at import": "import sys\nsys.exit(0)\n",
    "exit in the function": "import os\ndef f(x):\n    os._exit(0)\n",
    "sys.exit in the function": "import sys\ndef f(x):\n    sys.exit(0)\n",
    "raise SystemExit at import": "raise SystemExit(0)\n",
    "KeyboardInterrupt": "def f(x):\n    raise KeyboardInterrupt\n",
    "kill own process": "import os, signal\ndef f(x):\n    os.kill(os.getpid(), 9)\n",
    "exception before any test": "raise ValueError('boom')\ndef f(x):\n    return 2 * x\n",
    "syntax error": "def f(x) return 2 * x\n",
    "exit 0 on the harness's failure path": (
        "import os\n_exit = os._exit\nos._exit = lambda code: _exit(0)\n"
        "def f(x):\n    return 0\n"),
}

CHEATS = {
    "always-equal object": (
        "class A:\n    def __eq__(self, o): return True\n    __hash__ = object.__hash__\n"
        "def f(x):\n    return A()\n"),
    "int subclass with __eq__": (
        "class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n"
        "def f(x):\n    return I(0)\n"),
    "always-equal inside a list": (
        "class A:\n    def __eq__(self, o): return True\n"
        "def f(x):\n    return [A()]\n"),
    "read the test file": (
        "import re\nsrc = open('_rlef_test.py').read()\n"
        "answers = dict((int(a), int(b)) for a, b in re.findall(r'f\\((\\d+)\\) == (\\d+)', src))\n"
        "def f(x):\n    return answers[x]\n"),
    "rewrite the test file": (
        "open('_rlef_test.py', 'w').write('pass\\n')\ndef f(x):\n    return 0\n"),
    "patch builtins.abs": (
        "import builtins\nbuiltins.abs = lambda v: 0\ndef f(x):\n    return 0\n"),
    "patch math.isclose": (
        "import math\nmath.isclose = lambda *a, **k: True\ndef f(x):\n    return 0\n"),
    "patch AssertionError": (
        "import builtins\nbuiltins.AssertionError = type('E', (BaseException,), {})\n"
        "def f(x):\n    return 0\n"),
}

ASSERT_WITH_HELPERS = {"type": "assert", "code": (
    "import math\nassert abs(f(1) - 2) < 1e-9\nassert math.isclose(f(5), 10)\n"
    "assert f(1) == 2\n")}


@pytest.mark.parametrize("code", EXIT_EARLY.values(), ids=EXIT_EARLY.keys())
def test_exiting_early_never_passes(run, code):
    for test in (ASSERT, CALL):
        res = run("python", code, [test])
        assert res.verdict != Verdict.accepted and res.passed == 0, (test["type"], res.feedback)


@pytest.mark.parametrize("code", CHEATS.values(), ids=CHEATS.keys())
def test_cheats_are_failures(run, code):
    for test in (ASSERT, ASSERT_WITH_HELPERS, CALL):
        res = run("python", code, [test])
        assert res.verdict != Verdict.accepted, (test["type"], res.feedback)


@pytest.fixture
def run(hostile_run):
    """Local, Docker (runc) and Docker under gVisor (runsc)."""
    return hostile_run


def test_honest_solutions_still_pass(run):
    code = ("from collections import Counter\ndef f(x):\n    return 2 * x\n"
            "def g(s):\n    return Counter(s)\n"
            "def h(n):\n    return (i for i in range(n))\n")
    tests = [ASSERT, ASSERT_WITH_HELPERS, CALL,
             {"type": "assert", "code": "assert g('aab') == {'a': 2, 'b': 1}\n"
                                        "assert list(h(3)) == [0, 1, 2]\n"}]
    res = run("python", code, tests)
    assert res.verdict == Verdict.accepted, res.feedback


def test_expected_output_is_never_inside_the_sandbox(run):
    """A stdio program searching the whole file system for its expected output."""
    token = "EXPECTED_7f3a9c"
    search = ("import os\nhits = []\ntoken = 'EXPECTED_' + '7f3a9c'\n"  # not in its source
              "files = ['/proc/self/environ', '/proc/self/cmdline']\n"
              "for root in ('/work', '/tmp', '/dev/shm', '/var/tmp', '/root', '/home'):\n"
              "    for d, _, names in os.walk(root):\n"
              "        files += [os.path.join(d, n) for n in names]\n"
              "for path in files:\n"
              "    try:\n"
              "        if token.encode() in open(path, 'rb').read(1 << 20): hits.append(path)\n"
              "    except OSError: pass\n"
              "print(hits)\n")
    res = run("python", search, [stdio("", token), stdio("", token, checker="exact")])
    assert res.tests[0].verdict == Verdict.wrong_answer
    assert token not in res.tests[0].stdout and res.tests[0].stdout.strip() == "[]"


def test_program_cannot_plant_files_for_the_checker(run):
    """It writes a fake checker, fake expected/actual files and a json.py to shadow stdlib."""
    checker = ("import sys\nexp = open(sys.argv[2]).read().split()\n"
               "act = open(sys.argv[3]).read().split()\nsys.exit(0 if exp == act else 1)\n")
    plant = ("import os\nfor d in ('.', '/work/run', '/work/build', '/tmp', '/work'):\n"
             "    for name, text in (('checker.py', 'import sys; sys.exit(0)'),\n"
             "                       ('expected', 'wrong'), ('actual', 'wrong'),\n"
             "                       ('json.py', 'import os; os._exit(0)'),\n"
             "                       ('sitecustomize.py', 'import os; os._exit(0)')):\n"
             "        try: open(os.path.join(d, name), 'w').write(text)\n"
             "        except OSError: pass\n"
             "print('wrong')\n")
    test = stdio("", "right", checker="program", checker_code=checker)
    res = run("python", plant, [test, test])
    assert [t.verdict for t in res.tests] == [Verdict.wrong_answer] * 2, res.feedback
