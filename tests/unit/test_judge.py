import signal

import pytest

from service.judge import compare_output, judge, limit_verdict, rows_equal, values_equal
from service.sandbox.base import RunOutcome
from service.schema import AssertTest, CallTest, Limits, StdioTest, Verdict

LIMITS = Limits(cpu_time_s=1, wall_time_s=2, memory_mb=64, output_kb=16, pids=8)


def outcome(**kw):
    base = dict(exit_code=0, signal=None, cpu_time_s=0.01, wall_time_s=0.02, max_rss_kb=1000,
                timed_out=False, output_exceeded=False, stdout=b"", stderr=b"", channel=b"")
    return RunOutcome(**{**base, **kw})


@pytest.mark.parametrize("checker,expected,actual,ok", [
    ("tokens", "1 2\n3", "1  2 3\n\n", True),
    ("tokens", "1 2 3", "1 2", False),
    ("exact", "a\n", "a\n", True),
    ("exact", "a\n", "a", False),
    ("lines", "a\nb\n", "a  \nb", True),
    ("lines", "a b\n", "a\nb\n", False),
    ("float", "0.3333333 2.0", "0.33333334 2.0000001", True),
    ("float", "0.3333333 2", "0.33333334 2.0000001", False),  # integer tokens are exact
    ("float", "0.33", "0.34", False),
    ("float", "nan x", "nan x", True),
    ("unordered_lines", "a\nb\nb\n", "b\na\nb", True),
    ("unordered_lines", "a\nb\n", "a\na\n", False),
])
def test_compare_output(checker, expected, actual, ok):
    assert compare_output(checker, expected, actual) is ok


def test_values_equal():
    assert values_equal([1, [2.0, "x"]], [1, [2.0000000001, "x"]])
    assert not values_equal(1, True)
    assert not values_equal([1, 2], [1, 2, 3])
    assert values_equal({"a": 1.5}, {"a": 1.5})
    assert not values_equal({"a": 1}, {"b": 1})
    assert values_equal(3, 3.0)
    assert not values_equal(None, 0)


def test_rows_equal_unordered():
    assert rows_equal([[1, "a"], [2, "b"]], [[2, "b"], [1, "a"]], ordered=False)
    assert not rows_equal([[1, "a"], [2, "b"]], [[2, "b"], [1, "a"]], ordered=True)


def test_limit_verdicts_in_priority():
    assert limit_verdict(outcome(output_exceeded=True, timed_out=False), LIMITS, ()) == \
        Verdict.output_limit_exceeded
    assert limit_verdict(outcome(timed_out=True, exit_code=None, signal=9), LIMITS, ()) == \
        Verdict.time_limit_exceeded
    assert limit_verdict(outcome(signal=signal.SIGXCPU, exit_code=None), LIMITS, ()) == \
        Verdict.time_limit_exceeded
    assert limit_verdict(outcome(exit_code=1, stderr=b"MemoryError\n"), LIMITS,
                         ("MemoryError",)) == Verdict.memory_limit_exceeded
    assert limit_verdict(outcome(exit_code=None, signal=9, max_rss_kb=60000), LIMITS, ()) == \
        Verdict.memory_limit_exceeded
    assert limit_verdict(outcome(exit_code=None, signal=11), LIMITS, ()) == Verdict.runtime_error
    assert limit_verdict(outcome(exit_code=3), LIMITS, ()) == Verdict.runtime_error
    assert limit_verdict(outcome(), LIMITS, ()) is None


def test_judge_stdio_wrong_answer_carries_excerpt():
    res = judge(StdioTest(stdin="2", expected_stdout="4"), outcome(stdout=b"5\n"), LIMITS, (), "n")
    assert res.verdict == Verdict.wrong_answer
    assert (res.input, res.expected, res.actual) == ("2", "4", "5\n")


def test_judge_binary_output_is_text():
    res = judge(StdioTest(expected_stdout="x"), outcome(stdout=b"\xff\xfe\x00"), LIMITS, (), "n")
    assert res.verdict == Verdict.wrong_answer
    res.model_dump_json()  # valid JSON whatever bytes were printed


def test_judge_call_needs_nonce():
    test = CallTest(entry_point="f", args=[1], expected=2)
    good = outcome(channel=b'{"nonce": "abc", "result": 2}')
    forged = outcome(channel=b'{"nonce": "zzz", "result": 2}')
    assert judge(test, good, LIMITS, (), "abc").verdict == Verdict.accepted
    assert judge(test, forged, LIMITS, (), "abc").verdict == Verdict.runtime_error
    assert judge(test, outcome(), LIMITS, (), "abc").verdict == Verdict.runtime_error


def test_judge_assert_exit_zero_without_harness_is_failure():
    res = judge(AssertTest(code="assert False"), outcome(exit_code=0), LIMITS, (), "abc")
    assert res.verdict == Verdict.runtime_error
    assert "before its tests finished" in res.message
