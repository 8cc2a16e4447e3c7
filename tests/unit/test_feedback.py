from service.feedback import render
from service.schema import CompileResult, TestResult, Verdict

OK = CompileResult(status="ok")


def tr(verdict, **kw):
    return TestResult(verdict=verdict, **kw)


def test_rlef_template_wrong_answer_and_errors():
    results = [
        tr(Verdict.accepted, input="0"),
        tr(Verdict.wrong_answer, input="1 2\n", expected="3\n", actual="4\n"),
        tr(Verdict.runtime_error, input="x", message="ValueError: bad"),
        tr(Verdict.time_limit_exceeded, input="big"),
        tr(Verdict.memory_limit_exceeded, input="huge"),
    ]
    text = render(results, ["stdio"] * 5, OK)
    assert text.splitlines() == [
        "Your code failed the following tests:",
        "",
        "- input '1 2' failed: Expected output '3' but got '4'",
        "- input 'x' failed: ValueError: bad",
        "- input 'big' failed: Execution took too long.",
        "- input 'huge' failed: Out of memory.",
    ]


def test_call_and_assert_lines():
    results = [tr(Verdict.wrong_answer, input="f(1)", expected="2", actual="3"),
               tr(Verdict.runtime_error, input="assert g() == 1", message="AssertionError")]
    text = render(results, ["call", "assert"], OK)
    assert "Failure: 'f(1)': 'Expected 2 but got 3'" in text
    assert "Failure: 'assert g() == 1': 'AssertionError'" in text


def test_failed_assert_is_quoted():
    failed = tr(Verdict.wrong_answer, input="def check(c):\n    assert c(2) == 4\n",
                message="assert c(2) == 4")
    text = render([failed], ["assert"], OK)
    assert text.endswith("Failure: 'def check(c):\n    assert c(2) == 4': 'assert c(2) == 4'")
    assert "error: assert c(2) == 4" in render([failed], ["assert"], OK, style="plain")
    bare = render([tr(Verdict.wrong_answer, input="assert f()")], ["assert"], OK)
    assert bare.endswith("'assertion failed'")


def test_compile_error_and_all_passed_and_plain():
    ce = CompileResult(status="error", stderr="main.cpp:1: error: x\n" * 50)
    text = render([tr(Verdict.compile_error)], ["stdio"], ce)
    assert text.startswith("Your code failed to compile:\nmain.cpp:1: error: x")
    assert text.count("\n") == 20
    assert render([tr(Verdict.accepted)], ["stdio"], OK) == "All tests passed."
    plain = render([tr(Verdict.wrong_answer, input="1", expected="2", actual="3")],
                   ["stdio"], OK, style="plain")
    assert plain == "test 1: wrong_answer\ninput: 1\nexpected: 2\ngot: 3"


def test_truncation_is_visible_and_total_capped():
    results = [tr(Verdict.wrong_answer, input="x" * 1000, expected="1", actual="2")
               for _ in range(50)]
    text = render(results, ["stdio"] * 50, OK, max_chars=1000, value_chars=100)
    assert len(text) <= 1000 + 60
    assert "...(truncated)" in text
    assert "more failing tests" in text
    assert text == render(results, ["stdio"] * 50, OK, max_chars=1000, value_chars=100)
