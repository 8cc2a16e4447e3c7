"""veRL: a reward function (`reward.custom_reward_function`) and an RLEF interaction
(`actor_rollout_ref.rollout.multi_turn.interaction_config_path`), both through the rlef
service. YAML to register them: integrations/verl_interaction.yaml and the README.

veRL has no "no reward" value: a sandbox_error is retried, and if it persists the sample
scores 0.0 with `sandbox_error: 1.0` in its extra info so that it can be filtered or logged.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from uuid import uuid4

from verl.interactions.base import BaseInteraction

from integrations.extract import extract_code
from integrations.ground_truth import to_tests
from integrations.trl_rollout import RETRY
from service.client import ExecutionClient
from service.schema import ExecuteRequest, ExecuteResult, Limits, Test, Verdict

SANDBOX_RETRIES = 2


def _url(url: str | None) -> str:
    found = url or os.environ.get("RLEF_URL")
    if not found:
        raise ValueError("no rlef service: set reward_kwargs.url (or config.url) or RLEF_URL")
    return found


async def run(client: ExecutionClient, code: str, tests: list[Test], language: str,
              limits: Limits) -> ExecuteResult:
    req = ExecuteRequest(language=language, code=code, tests=tests,  # type: ignore[arg-type]
                         limits=limits)
    res = await client.aexecute(req)
    for _ in range(SANDBOX_RETRIES):
        if res.status != "sandbox_error":
            break
        res = await client.aexecute(req)
    return res


def score_of(res: ExecuteResult | None, partial: bool) -> dict[str, Any]:
    if res is None:
        return {"score": 0.0, "acc": False, "passed": 0.0, "sandbox_error": 0.0}
    accepted = res.verdict == Verdict.accepted and res.status == "ok"
    frac = res.passed / res.total if res.total else 0.0
    score = 1.0 if accepted else (frac if partial else 0.0)
    return {"score": score, "acc": accepted, "passed": frac,
            "sandbox_error": float(res.status == "sandbox_error")}


async def compute_score(data_source: str, solution_str: str, ground_truth: Any,
                        extra_info: dict[str, Any] | None = None, *, url: str | None = None,
                        language: str = "python", partial: bool = False,
                        time_limit_s: float = 5.0, **_: Any) -> dict[str, Any]:
    """veRL's custom reward function: the response's last code block run on `ground_truth`
    (rlef tests, or `{"inputs", "outputs"[, "fn_name"]}` as veRL's code data sets hold it).
    `extra_info["language"]` overrides the language per sample."""
    lang = (extra_info or {}).get("language") or language
    code = extract_code(solution_str, lang)
    if code is None:
        return score_of(None, partial)
    limits = Limits(cpu_time_s=time_limit_s, wall_time_s=2 * time_limit_s)
    res = await run(ExecutionClient(_url(url)), code, to_tests(ground_truth), lang, limits)
    return score_of(res, partial)


def compute_score_sync(data_source: str, solution_str: str, ground_truth: Any,
                       extra_info: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """The same for veRL's synchronous reward managers."""
    return asyncio.run(compute_score(data_source, solution_str, ground_truth, extra_info,
                                     **kwargs))


class RlefInteraction(BaseInteraction):
    """Runs each response's code on the public tests; while they fail, the service's
    feedback is the next user turn. Terminates on pass, with the program's score on public +
    private tests as that turn's score (`calculate_score` gives the same at any time).

    config: url, language (python), partial (false), time_limit_s (5). Per sample
    (`extra_info.interaction_kwargs`): name, and either public_tests + private_tests or
    ground_truth (then the first `public_count` of its tests are public)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.client = ExecutionClient(_url(config.get("url")))
        self.language = str(config.get("language", "python"))
        self.partial = bool(config.get("partial", False))
        seconds = float(config.get("time_limit_s", 5.0))
        self.limits = Limits(cpu_time_s=seconds, wall_time_s=2 * seconds)
        self.public_count = int(config.get("public_count", 2))
        self.instances: dict[str, dict[str, Any]] = {}

    async def start_interaction(self, instance_id: str | None = None, ground_truth: Any = None,
                                public_tests: Any = None, private_tests: Any = None,
                                language: str | None = None, **kwargs: Any) -> str:
        instance_id = instance_id or str(uuid4())
        if public_tests is not None:
            public = to_tests(public_tests)
            private = to_tests(private_tests) if private_tests is not None else []
        else:
            everything = to_tests(ground_truth)
            public, private = everything[:self.public_count], everything[self.public_count:]
        self.instances[instance_id] = {"public": public, "all": public + private, "code": None,
                                       "language": language or self.language}
        return instance_id

    async def generate_response(self, instance_id: str, messages: list[dict[str, Any]],
                                **kwargs: Any) -> tuple[bool, str, float, dict[str, Any]]:
        state = self.instances[instance_id]
        reply = next((str(m.get("content") or "") for m in reversed(messages)
                      if m.get("role") == "assistant"), "")
        lang = state["language"]
        state["code"] = code = extract_code(reply, lang)
        if code is None:
            note = f"No fenced {lang} code block found in your answer."
            return False, RETRY.format(feedback=note, language=lang), 0.0, {}
        res = await run(self.client, code, state["public"], lang, self.limits)
        if res.status == "sandbox_error":  # not the model's fault: no feedback, no score
            return True, "", 0.0, {"sandbox_error": True}
        if res.verdict == Verdict.accepted:
            # veRL keeps turn scores, never calls calculate_score: the last turn's score is
            # the episode's, on public + private tests
            return True, "All public tests passed.", await self.calculate_score(instance_id), {
                "passed": res.passed}
        return False, RETRY.format(feedback=res.feedback, language=lang), 0.0, {
            "passed": res.passed}

    async def calculate_score(self, instance_id: str = "", **kwargs: Any) -> float:
        state = self.instances[instance_id]
        if state["code"] is None:
            return 0.0
        res = await run(self.client, state["code"], state["all"], state["language"],
                        self.limits)
        return float(score_of(res, self.partial)["score"])

    async def finalize_interaction(self, instance_id: str = "", **kwargs: Any) -> None:
        self.instances.pop(instance_id, None)
