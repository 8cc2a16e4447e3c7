"""TRL: an async reward function for `GRPOTrainer(reward_funcs=...)` and a multi-turn RLEF
rollout for `GRPOTrainer(rollout_func=...)`.

The reward scores every completion of a step in one batch through the service. It returns
None for a sandbox_error: TRL drops that function from the row's sum, and a row with no
reward at all is left out of its group's baseline, rather than scored as the program's
failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from integrations.extract import completion_text, extract_code
from integrations.ground_truth import to_tests
from service.client import ExecutionClient
from service.schema import ExecuteRequest, ExecuteResult, Limits, Test, Verdict

RewardFunc = Callable[..., Awaitable[list[float | None]]]
FINAL_CODE = "rlef_final_code"  # the rollout's extra field: the last turn's program


def reward_of(result: ExecuteResult | None, partial: bool) -> float | None:
    """None: the sandbox failed, no verdict. No code at all scores as a failure."""
    if result is None:
        return 0.0
    if result.status == "sandbox_error":
        return None
    if result.verdict == Verdict.accepted:
        return 1.0
    return result.passed / result.total if partial and result.total else 0.0


async def score_codes(client: ExecutionClient, codes: Sequence[str | None],
                      suites: Sequence[list[Test]], languages: Sequence[str],
                      limits: Limits) -> list[ExecuteResult | None]:
    """One batch for the whole step; None where a completion carried no code."""
    todo = [i for i, c in enumerate(codes) if c is not None and suites[i]]
    reqs = [ExecuteRequest(id=str(i), language=languages[i], code=codes[i] or "",  # type: ignore[arg-type]
                           tests=suites[i], limits=limits) for i in todo]
    results = await client.aexecute_many(reqs) if reqs else []
    out: list[ExecuteResult | None] = [None] * len(codes)
    for i, res in zip(todo, results, strict=True):
        out[i] = res
    return out


def rlef_reward(url: str, *, tests_column: str = "tests", language: str = "python",
                partial: bool = False, limits: Limits | None = None,
                token: str | None = None) -> RewardFunc:
    """A reward function reading each row's test suite from the dataset column `tests_column`
    (rlef tests, or veRL-style `{"inputs", "outputs"}`) and its language from a `language`
    column when there is one. 1.0 when every test passes, else 0.0 (or the fraction passed
    with `partial`)."""
    client = ExecutionClient(url, token=token)
    run_limits = limits or Limits()

    async def rlef_execution(prompts: list[Any], completions: list[Any],
                             **kwargs: Any) -> list[float | None]:
        n = len(completions)
        languages = kwargs.get("language") or [language] * n
        codes = kwargs.get(FINAL_CODE) or [
            extract_code(completion_text(c), lang) for c, lang in zip(completions, languages,
                                                                       strict=True)]
        suites = [to_tests(spec) for spec in kwargs[tests_column]]
        results = await score_codes(client, codes, suites, languages, run_limits)
        return [reward_of(r, partial) for r in results]

    return rlef_execution
