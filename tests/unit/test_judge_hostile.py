"""The judge is total: whatever a program prints or returns is a verdict, never an exception.
And exact: an int expected value never matches through a float tolerance."""

import json

import pytest

from service.compare import compare_output, float_token_eq, rows_equal, values_equal
from service.judge import judge
from service.sandbox.base import RunOutcome
from service.schema import AssertTest, CallTest, Limits, SqlTest, StdioTest, Verdict

LIMITS = Limits(cpu_time_s=1, wall_time_s=2, memory_mb=64, output_kb=16, pids=8)
NONCE = "n0nce"


def outcome(channel: bytes = b"", **kw):
    base = dict(exit_code=0, signal=None, cpu_time_s=0.01, wall_time_s=0.02, max_rss_kb=1000,
                timed_out=False, output_exceeded=False, stdout=b"", stderr=b"", channel=channel)
    return RunOutcome(**{**base, **kw})


def payload(**fields) -> bytes:
    return json.dumps({"nonce": NONCE, **fields}).encode()


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def run(test, channel: bytes):
    res = judge(test, outcome(channel), LIMITS, (), NONCE)
    res.model_dump_json()  # the result always serialises
    return res


HOSTILE_CHANNELS = [
    pytest.param(b'{"nonce": "n0nce", "result": ' + b"9" * 5000 + b"}", id="int-5000-digits"),
    pytest.param(b'{"nonce": "n0nce", "result": ' + nested(5000).encode() + b"}", id="deep-5000"),
    pytest.param(b'{"nonce": "n0nce", "result": ' + nested(400).encode() + b"}", id="deep-400"),
    pytest.param(b'{"nonce": "n0nce", "result": ' + nested(100_000).encode() + b"}",
                 id="deep-100000"),
    pytest.param(b'{"nonce": "n0nce", "result": 1e999999}', id="float-overflow-literal"),
    pytest.param(b'{"nonce": "n0nce", "result": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"nonce": "n0nce", "result": NaN}', id="nan"),
    pytest.param(b'{"nonce": "n0nce", "result": -Infinity}', id="-inf"),
    pytest.param(b'\xff\xfe{"nonce"', id="not-utf8"),
    pytest.param(b'{"nonce": "n0nce", "result": [1, 2', id="truncated"),
    pytest.param(b'["n0nce", 1]', id="not-an-object"),
    pytest.param(b'{"nonce": "n0nce", "result": ' + b"[" * 10 + b"]" * 10 + b"}", id="lists"),
    pytest.param(b'{"nonce": "n0nce", "result": {"a": {"b": [true, null]}}}', id="dicts"),
    pytest.param(b'{"nonce": "n0nce"}', id="no-result"),
    pytest.param(b'{"nonce": "n0nce", "result": 1}' + b" " * (3 << 20), id="huge-padding"),
    pytest.param(b'{"nonce": "n0nce", "result": "' + b"x" * (3 << 20) + b'"}', id="huge-str"),
]


@pytest.mark.parametrize("channel", HOSTILE_CHANNELS)
@pytest.mark.parametrize("expected", [1.5, 1, True, None, "x", [1.5], {"a": 1.0}, 10 ** 100])
def test_call_result_never_raises(channel, expected):
    res = run(CallTest(entry_point="f", expected=expected), channel)
    assert res.verdict in (Verdict.wrong_answer, Verdict.runtime_error)


@pytest.mark.parametrize("channel", HOSTILE_CHANNELS)
def test_sql_rows_never_raise(channel):
    res = run(SqlTest(expected_rows=[[1, 2.5]]), channel.replace(b'"result"', b'"rows"'))
    assert res.verdict in (Verdict.wrong_answer, Verdict.runtime_error)


@pytest.mark.parametrize("channel", HOSTILE_CHANNELS)
def test_assert_payload_never_raises(channel):
    res = run(AssertTest(code="assert f() == 1"), channel.replace(b'"result"', b'"status"'))
    assert res.verdict == Verdict.runtime_error


def test_float_expected_against_a_huge_int_is_wrong_answer():
    # 10**400 where a float is expected: float() of it overflows
    res = run(CallTest(entry_point="f", expected=1.5), payload(result=10 ** 400))
    assert res.verdict == Verdict.wrong_answer


def test_unreadable_results_say_why():
    res = run(CallTest(entry_point="f", expected=1), b'{"nonce": "n0nce", "result": '
              + nested(5000).encode() + b"}")
    assert "not readable" in res.message or "nested" in res.message
    res = run(CallTest(entry_point="f", expected=1), payload(result=json.loads(nested(400))))
    assert "nested more than" in res.message


def test_deep_values_the_api_accepts_are_still_judged():
    deep = json.loads(nested(250))  # about the deepest value a request can carry
    assert run(CallTest(entry_point="f", expected=deep), payload(result=deep)).verdict == \
        Verdict.accepted
    res = run(CallTest(entry_point="f", expected=1), b'{"nonce": "n0nce", "result": '
              + b"9" * 5000 + b"}")
    assert res.verdict == Verdict.wrong_answer and "4300" in res.message


def test_surrogates_from_the_program_are_made_valid_text():
    res = run(AssertTest(code="assert 0"), payload(status="failed", message="bad \ud800"))
    assert res.verdict == Verdict.wrong_answer and "\ud800" not in res.message
    assert res.model_dump_json()


@pytest.mark.parametrize("expected,actual", [
    (1000000, 1000001.0),       # off by one, within 1e-6 relative
    (1000000, 999999.9999),
    ([[1, 2]], [[1, 2.0000001]]),
    (1, True),
    (0, False),
    (True, 1),
    (1.0, True),
    (2, "2"),
    (None, 0),
    ([1], (1, 2)),
    ({"a": 1}, [["a", 1]]),
])
def test_no_match_through_tolerance_or_type(expected, actual):
    assert not values_equal(expected, actual)
    assert run(CallTest(entry_point="f", expected=expected),
               payload(result=actual)).verdict == Verdict.wrong_answer


@pytest.mark.parametrize("expected,actual", [
    (3, 3.0),                   # exactly equal numbers
    (1.5, 1.5000000001),
    (0.1 + 0.2, 0.3),
    (float("nan"), float("nan")),
    ([1.0, [2, "x"]], [1.0000000001, [2, "x"]]),
])
def test_equal_values_still_match(expected, actual):
    assert values_equal(expected, actual)


def test_sql_int_columns_are_exact():
    assert not rows_equal([[1000000]], [[1000001.0]], ordered=True)
    assert rows_equal([[0.5, 2]], [[0.5000000001, 2]], ordered=True)
    res = run(SqlTest(expected_rows=[[1000000]]), payload(rows=[[1000001.0]]))
    assert res.verdict == Verdict.wrong_answer
    assert not rows_equal([[1]], "x", ordered=False)
    assert not rows_equal([[1]], [[1], [2]], ordered=False)


@pytest.mark.parametrize("expected,actual,ok", [
    ("0.5", "0.5000001", True),
    ("1e3", "1000.0000001", True),
    ("1000000", "1000001", False),       # integer tokens are exact
    ("1000000", "1000000.0", True),      # ... by their exact value
    ("2", "2.000000", True),
    ("-0", "0.0", True),
    ("1000000", "1000000.0000001", False),
    ("1000000", "1e6", True),
    ("3", "1e9999999999999999999", False),
    ("3", "3" + "0" * 5000, False),
    ("1000000", "1000000", True),
    ("1.5", "١.٥", False),              # Arabic-Indic digits
    ("1.5", "1_0.5", False),
    ("1.5", "inf", False),
    ("1.5", "nan", False),
    ("1.5", "+1.5", True),
    ("1.5", "0x1.8p0", False),
    ("nan", "nan", True),                # words compare exactly
    ("inf", "1e999", False),
    ("yes", "YES", False),
])
def test_float_checker_tokens(expected, actual, ok):
    assert float_token_eq(expected, actual, 1e-6, 1e-6) is ok
    assert compare_output("float", f"{expected} 7", f"{actual} 7") is ok


def test_float_checker_whole_output():
    assert compare_output("float", "3\n0.333333", "3\n0.3333333333")
    assert not compare_output("float", "3\n0.333333", "3.0000001\n0.333333")
    res = judge(StdioTest(expected_stdout="100 0.5", checker="float"),
                outcome(stdout=b"101 0.5\n"), LIMITS, (), NONCE)
    assert res.verdict == Verdict.wrong_answer


@pytest.mark.parametrize("status,message,verdict", [
    ("passed", "", Verdict.accepted),
    ("failed", "assert f(2) == 4", Verdict.wrong_answer),
    ("error", "ZeroDivisionError: division by zero", Verdict.runtime_error),
    ("PASSED", "", Verdict.runtime_error),
    (True, "", Verdict.runtime_error),
    (None, "", Verdict.runtime_error),
])
def test_assert_payload(status, message, verdict):
    res = run(AssertTest(code="assert f(2) == 4"), payload(status=status, message=message))
    assert res.verdict == verdict
    if status in ("failed", "error"):
        assert res.message == message
    if verdict == Verdict.runtime_error and status not in ("error",):
        assert "before its tests finished" in res.message


def test_assert_needs_the_nonce_and_a_status():
    test = AssertTest(code="assert f(2) == 4")
    forged = b'{"nonce": "other", "status": "passed"}'
    assert run(test, forged).verdict == Verdict.runtime_error
    assert run(test, payload(done=True)).verdict == Verdict.runtime_error
    assert run(test, payload(status="failed", message=7)).message == "An assertion failed."
    assert run(test, b"").message == "The program exited before its tests finished."


def test_output_excerpts_are_bounded():
    big = b"x" * (16 << 10) + "é".encode() * 100_000
    res = judge(StdioTest(expected_stdout="x"), outcome(stdout=big, stderr=big),
                Limits(output_kb=1024), (), NONCE)
    assert len(res.stdout) < 70_000 and len(res.stderr) < 9_000


def test_a_jobs_kept_output_is_bounded():
    from service.judge import JOB_KEEP_BYTES, keep_per_test

    big = b"y" * (1 << 20)
    keep = keep_per_test(1000)
    res = judge(StdioTest(expected_stdout="x"), outcome(stdout=big, stderr=big),
                Limits(output_kb=4096), (), NONCE, keep_bytes=keep)
    assert len(res.stdout) <= keep + 40 and len(res.stderr) <= keep + 40
    assert keep_per_test(1) == 64 * 1024 and 1000 * keep <= JOB_KEEP_BYTES + 1000 * 1024


@pytest.mark.parametrize("checker", ["tokens", "float", "lines", "unordered_lines", "exact"])
@pytest.mark.parametrize("printed", ["1\n", "1 ", "\u2028"])
def test_comparing_a_huge_output_holds_no_list_of_it(checker, printed):
    import tracemalloc

    actual = printed * (8 << 20)  # what a program may print under a 16 MB output cap
    tracemalloc.start()
    try:
        assert compare_output(checker, "1\n1\n", actual) is False
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # at most one copy of it (a strip); a list of its 8M lines or tokens would be ~500 MB
    assert peak < len(actual) + (1 << 20), peak
