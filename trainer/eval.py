"""n@k solve rates of multi-turn rollouts, single- vs multi-turn, and pass by turn.

Every model response counts as one sample (RLEF §3): a rollout of up to T turns spends
up to T samples and submits one program (its final attempt), so n rollouts of T turns
give n@(n·T). From R rollouts per problem with c solved, the chance that at least one of
n rollouts drawn without replacement is solved is the unbiased estimator of Chen et al.
(2021): 1 - C(R-c, n) / C(R, n), averaged over problems.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from service.schema import Verdict
from trainer.data import Problem
from trainer.rollout import Episode, Executor, Generator, request, run_episodes


def pass_at(n_total: int, n_correct: int, k: int) -> float:
    """Unbiased P(at least one of k draws is correct) from n_total with n_correct."""
    if n_total - n_correct < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n_total - n_correct + 1, n_total + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def sampling_defaults(samples: int) -> tuple[float, float]:
    """(temperature, top_p) as in the paper: 0.2 for 1@3, 1.0 / 0.95 for 10@100."""
    return (1.0, 0.95) if samples >= 10 else (0.2, 1.0)


def solved_by_turn(turn_passes: Sequence[bool], max_turns: int) -> list[bool]:
    """Whether the attempt in effect at each turn passes every test.

    An episode that stopped early (its public tests passed) keeps its last attempt.
    """
    out, current = [], False
    for t in range(max_turns):
        if t < len(turn_passes):
            current = turn_passes[t]
        out.append(current)
    return out


class EvalReport(BaseModel):
    problems: int
    temperature: float | None = None
    top_p: float | None = None
    rollouts_per_problem: int
    max_turns: int
    single_turn_solve_rate: float
    multi_turn_solve_rate: float
    pass_by_turn: list[float]
    n_at_k: dict[str, float]
    mean_turns: float
    ten_at_hundred: dict[str, float] | None = Field(
        None, description="10@100 of multi-turn (33 rollouts) and independent sampling")
    independent_1_at_k: float | None = Field(
        None, description="equal budget: max_turns single-turn samples per problem, the "
        "first that passes the public tests (else the last) submitted")
    public_solve_rate: float | None = Field(None, description="final attempts passing the "
                                            "public tests only, beside the private rate")


def summarise(per_problem: list[list[list[bool]]], max_turns: int, turns_taken: list[int],
              ns: Sequence[int] = (1, 10)) -> EvalReport:
    """per_problem[p][r] = solved_by_turn for rollout r of problem p."""
    rollouts = [r for p in per_problem for r in p]
    R = len(per_problem[0])
    by_turn = [sum(r[t] for r in rollouts) / len(rollouts) for t in range(max_turns)]
    n_at_k = {}
    for n in ns:
        if n <= R:
            scores = [pass_at(R, sum(r[-1] for r in p), n) for p in per_problem]
            n_at_k[f"{n}@{n * max_turns}"] = sum(scores) / len(scores)
    return EvalReport(problems=len(per_problem), rollouts_per_problem=R, max_turns=max_turns,
                      single_turn_solve_rate=by_turn[0], multi_turn_solve_rate=by_turn[-1],
                      pass_by_turn=by_turn, n_at_k=n_at_k,
                      mean_turns=sum(turns_taken) / len(turns_taken))


def grade_turns(episodes: list[Episode], client: Executor, progress: bool) -> list[list[bool]]:
    """Every turn's code on the public and private tests (a codeless turn fails).

    run_episodes has graded each last turn already (`solved`): only earlier turns run here.
    """
    jobs = [(e, t) for e, ep in enumerate(episodes) for t, turn in enumerate(ep.turns[:-1])
            if turn.code is not None]
    results = client.execute_many([request(episodes[e].problem, episodes[e].turns[t].code or "",
                                           private=True) for e, t in jobs], progress=progress)
    passes = [[False] * (len(ep.turns) - 1) + [ep.solved] for ep in episodes]
    for (e, t), res in zip(jobs, results, strict=True):
        passes[e][t] = res.status == "ok" and res.verdict == Verdict.accepted
    return passes


def passed_public(ep: Episode) -> bool:
    last = ep.turns[-1].result if ep.turns else None
    return last is not None and last.verdict == Verdict.accepted


def submit(episodes: list[Episode], n: int) -> bool:
    """Whether any of n submissions solves the problem: the final programs of the first
    n episodes that pass the public tests, filled up in order with the others."""
    ranked = [e for e in episodes if passed_public(e)] + \
        [e for e in episodes if not passed_public(e)]
    return any(e.solved for e in ranked[:n])


def n_at_k(problems: list[Problem], policy: Generator, client: Executor, n: int, k: int,
           max_turns: int) -> float:
    """n@k with k model samples per problem: k // max_turns rollouts of up to max_turns
    turns (max_turns = 1: independent sampling), n of their final programs submitted."""
    per = max(1, k // max_turns)
    episodes = run_episodes([p for p in problems for _ in range(per)], policy, client,
                            max_turns)
    return sum(submit(episodes[i * per:(i + 1) * per], n)
               for i in range(len(problems))) / len(problems)


def evaluate(problems: list[Problem], policy: Generator, client: Executor, max_turns: int,
             samples: int, progress: bool = False, equal_budget: bool = False,
             blind_feedback: str | None = None, hundred: bool = False) -> EvalReport:
    """Multi-turn rollouts (and, with equal_budget, independent sampling at max_turns
    samples per problem, the same number of model samples as one rollout at most)."""
    batch = [p for p in problems for _ in range(samples)]
    episodes = run_episodes(batch, policy, client, max_turns, blind_feedback=blind_feedback)
    passes = grade_turns(episodes, client, progress)
    by_turn = [solved_by_turn(p, max_turns) for p in passes]
    per_problem = [by_turn[i * samples:(i + 1) * samples] for i in range(len(problems))]
    report = summarise(per_problem, max_turns, [len(ep.turns) for ep in episodes])
    report.temperature = getattr(policy, "temperature", None)
    report.top_p = getattr(policy, "top_p", None)
    report.public_solve_rate = sum(map(passed_public, episodes)) / len(episodes)
    if equal_budget:
        report.independent_1_at_k = n_at_k(problems, policy, client, 1, max_turns, 1)
    if hundred:
        report.ten_at_hundred = {
            "multi-turn": n_at_k(problems, policy, client, 10, 100, max_turns),
            "independent": n_at_k(problems, policy, client, 10, 100, 1)}
    return report


def table(report: EvalReport, title: str = "") -> str:
    rows = [("problems", str(report.problems)),
            ("rollouts per problem", str(report.rollouts_per_problem)),
            ("single-turn solve rate", f"{report.single_turn_solve_rate:.1%}"),
            (f"multi-turn solve rate ({report.max_turns} turns)",
             f"{report.multi_turn_solve_rate:.1%}"),
            *[(f"pass by turn {t + 1}", f"{v:.1%}") for t, v in enumerate(report.pass_by_turn)],
            *[(k, f"{v:.1%}") for k, v in report.n_at_k.items()],
            ("mean turns", f"{report.mean_turns:.2f}")]
    if report.public_solve_rate is not None:
        rows.insert(4, ("multi-turn, public tests only", f"{report.public_solve_rate:.1%}"))
    if report.independent_1_at_k is not None:
        rows.append((f"independent sampling 1@{report.max_turns} (equal budget)",
                     f"{report.independent_1_at_k:.1%}"))
    for kind, rate in (report.ten_at_hundred or {}).items():
        rows.append((f"{kind} 10@100", f"{rate:.1%}"))
    if report.temperature is not None:
        rows.append(("temperature / top_p", f"{report.temperature:g} / {report.top_p:g}"))
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    return "\n".join(lines + [f"{k:<{width}}  {v:>7}" for k, v in rows])
