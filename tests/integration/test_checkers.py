"""Every checker and test type, end to end through a real sandbox."""

from service.schema import Verdict
from tests.conftest import stdio

ECHO = "import sys\nsys.stdout.write(sys.stdin.read())\n"


def verdicts(res):
    return [t.verdict for t in res.tests]


def test_stdio_checkers(run):
    tests = [
        stdio("1  2\n3\n", "1 2 3", checker="tokens"),
        stdio("1 2\n", "1 2\n", checker="exact"),
        stdio("1 2\n", "1 2", checker="exact"),
        stdio("a \nb\n", "a\nb", checker="lines"),
        stdio("0.50000001\n", "0.5", checker="float"),
        stdio("0.6\n", "0.5", checker="float"),
        stdio("b\na\n", "a\nb\n", checker="unordered_lines"),
        stdio("b\nb\n", "a\nb\n", checker="unordered_lines"),
    ]
    res = run("python", ECHO, tests)
    A, W = Verdict.accepted, Verdict.wrong_answer
    assert verdicts(res) == [A, A, W, A, A, W, A, W]


def test_program_checker(run):
    checker = (
        "import sys\n"
        "inp, exp, act = (open(p).read() for p in sys.argv[1:4])\n"
        "n = int(inp)\n"
        "a, b = map(int, act.split())\n"
        "if a + b == n and a > 0 and b > 0:\n"
        "    sys.exit(0)\n"
        "print(f'{a} + {b} is not a split of {n}')\n"
        "sys.exit(1)\n"
    )
    tests = [stdio("10\n", "", checker="program", checker_code=checker),
             stdio("7\n", "", checker="program", checker_code=checker)]
    res = run("python", "n = int(input())\nprint(3, n - 3 if n != 7 else 5)\n", tests)
    assert verdicts(res) == [Verdict.accepted, Verdict.wrong_answer]
    assert "3 + 5 is not a split of 7" in res.feedback


def test_call_tests(run):
    code = "def add(a, b=0):\n    return a + b\n\ndef pair(x):\n    return (x, {x})\n"
    tests = [
        {"type": "call", "entry_point": "add", "args": [1, 2], "expected": 3},
        {"type": "call", "entry_point": "add", "args": [0.1, 0.2], "expected": 0.3},
        {"type": "call", "entry_point": "add", "args": [1], "kwargs": {"b": 5}, "expected": 7},
        {"type": "call", "entry_point": "pair", "args": [4], "expected": [4, [4]]},
        {"type": "call", "entry_point": "missing", "args": [], "expected": None},
    ]
    res = run("python", code, tests)
    A, W, R = Verdict.accepted, Verdict.wrong_answer, Verdict.runtime_error
    assert verdicts(res) == [A, A, W, A, R]
    assert "Failure: 'add(1, b=5)': 'Expected 7 but got 6'" in res.feedback
    assert "function 'missing' is not defined" in res.feedback


def test_call_leetcode_class(run):
    code = "class Solution:\n    def twice(self, x):\n        return 2 * x\n"
    res = run("python", code, [{"type": "call", "entry_point": "twice", "args": [4],
                                "expected": 8}])
    assert res.verdict == Verdict.accepted


def test_assert_tests(run):
    code = "def inc(x):\n    return x + 1\n"
    tests = [{"type": "assert", "code": "assert inc(1) == 2\nassert inc(-1) == 0\n"},
             {"type": "assert", "code": "def check(f):\n    assert f(2) == 4\ncheck(inc)\n"}]
    res = run("python", code, tests)
    assert verdicts(res) == [Verdict.accepted, Verdict.wrong_answer]
    assert "assert f(2) == 4" in res.tests[1].message  # the failing line is quoted
    assert "assert f(2) == 4" in res.feedback


def test_stop_on_first_failure_skips_the_rest(run):
    tests = [stdio("1\n", "1"), stdio("2\n", "3"), stdio("3\n", "3")]
    res = run("python", ECHO, tests, stop_on_first_failure=True)
    assert verdicts(res) == [Verdict.accepted, Verdict.wrong_answer, Verdict.skipped]
    assert res.verdict == Verdict.wrong_answer and res.passed == 1
