"""Multi-turn RLEF episodes: write code, run it on the public tests, read the feedback, retry.

Pure pieces (prompts, code extraction, rewards) are plain functions; `run_episodes`
drives a batch of episodes in lock-step so that each turn's executions go to the service
together (`execute_many`) and its workers run them in parallel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from service.schema import ExecuteRequest, ExecuteResult, Limits, Verdict
from trainer.data import Problem

FENCE_NAMES = {"python": ("python", "py", "python3"), "cpp": ("cpp", "c++"), "c": ("c",),
               "javascript": ("javascript", "js"), "java": ("java",), "rust": ("rust", "rs"),
               "go": ("go", "golang"), "bash": ("bash", "sh"), "sql": ("sql",)}
DISPLAY = {"python": "Python", "cpp": "C++", "c": "C", "javascript": "JavaScript",
           "java": "Java", "rust": "Rust", "go": "Go", "bash": "Bash", "sql": "SQL"}
NO_CODE_FEEDBACK = "Your response did not contain a code block."

Message = dict[str, str]


def instruction(language: str) -> str:
    return (f"Your code should be enclosed in triple backticks like so: ```{language} "
            f"YOUR CODE HERE ```. Use the backticks for your code only.")


def first_prompt(problem: Problem) -> str:
    lang = problem.language
    return (f"Provide a {DISPLAY[lang]} solution for the following competitive programming "
            f"question: {problem.statement}\n\n{instruction(lang)}")


def retry_prompt(feedback: str, language: str) -> str:
    return f"{feedback}\n\nGive it another try.\n{instruction(language)}"


def extract_code(response: str, language: str) -> str | None:
    """The last fenced block tagged with the language (or untagged); None if there is none."""
    blocks = re.findall(r"```([\w+#-]*)[ \t]*\n?(.*?)```", response, flags=re.S)
    names = FENCE_NAMES[language]
    for tag, body in reversed(blocks):
        if (tag.lower() in names or tag == "") and body.strip():
            return body.strip("\n") + "\n"
    return None


def episode_reward(solved: bool, invalid_turns: int, invalid_penalty: float = -0.2) -> float:
    """+1 if the final attempt passes every test, else -1; a penalty per codeless turn."""
    return (1.0 if solved else -1.0) + invalid_penalty * invalid_turns


def turn_rewards(n_turns: int, solved: bool, invalid: Sequence[bool],
                 invalid_penalty: float = -0.2) -> list[float]:
    """Rewards placed on turns: penalties where they happened, the outcome on the last."""
    rewards = [invalid_penalty if bad else 0.0 for bad in invalid[:n_turns]]
    rewards[-1] += 1.0 if solved else -1.0
    return rewards


def problem_limits(problem: Problem, default_time_s: float = 10.0,
                   default_memory_mb: int = 1024) -> Limits:
    time_s = problem.time_limit_s or default_time_s
    return Limits(cpu_time_s=time_s, wall_time_s=time_s * 2 + 1,
                  memory_mb=problem.memory_mb or default_memory_mb)


@dataclass
class Generation:
    text: str
    prompt_ids: list[int]
    response_ids: list[int]


@dataclass
class Turn:
    messages: list[Message]  # the conversation the model saw (ends with a user turn)
    generation: Generation
    code: str | None
    result: ExecuteResult | None = None

    @property
    def response(self) -> str:
        return self.generation.text


@dataclass
class Episode:
    problem: Problem
    turns: list[Turn] = field(default_factory=list)
    solved: bool = False
    final: ExecuteResult | None = None
    reward: float = 0.0

    @property
    def invalid(self) -> list[bool]:
        return [t.code is None for t in self.turns]

    def last_code(self) -> str | None:
        """The final attempt's code (None when the last turn had no code block)."""
        return self.turns[-1].code if self.turns else None


class Generator(Protocol):
    def generate(self, conversations: list[list[Message]]) -> list[Generation]: ...


class Executor(Protocol):
    def execute_many(self, requests: Sequence[ExecuteRequest],
                     progress: bool = False) -> list[ExecuteResult]: ...


def request(problem: Problem, code: str, private: bool) -> ExecuteRequest:
    tests = problem.public_tests + (problem.private_tests if private else [])
    return ExecuteRequest(language=problem.language, code=code, tests=tests,
                          limits=problem_limits(problem), feedback_style="rlef")


def run_episodes(problems: list[Problem], policy: Generator, client: Executor, max_turns: int,
                 invalid_penalty: float = -0.2) -> list[Episode]:
    episodes = [Episode(p) for p in problems]
    convs: list[list[Message]] = [[{"role": "user", "content": first_prompt(p)}]
                                  for p in problems]
    active = list(range(len(problems)))
    for _ in range(max_turns):
        responses = policy.generate([convs[i] for i in active])
        runs = []
        for i, gen in zip(active, responses, strict=True):
            code = extract_code(gen.text, problems[i].language)
            episodes[i].turns.append(Turn(list(convs[i]), gen, code))
            if code is not None:
                runs.append(i)
        results = client.execute_many([request(problems[i], episodes[i].turns[-1].code or "",
                                               private=False) for i in runs])
        for i, res in zip(runs, results, strict=True):
            episodes[i].turns[-1].result = res
        still = []
        for i in active:
            last = episodes[i].turns[-1]
            if last.result is not None and last.result.verdict == Verdict.accepted:
                continue
            feedback = last.result.feedback if last.result is not None else NO_CODE_FEEDBACK
            convs[i] += [{"role": "assistant", "content": last.response},
                         {"role": "user", "content": retry_prompt(feedback,
                                                                  problems[i].language)}]
            still.append(i)
        active = still
        if not active:
            break
    score(episodes, client, invalid_penalty)
    return episodes


def score(episodes: list[Episode], client: Executor, invalid_penalty: float) -> None:
    """The final attempt on public + private tests sets the reward."""
    graded = [e for e in episodes if e.last_code() is not None]
    results = client.execute_many([request(e.problem, e.last_code() or "", private=True)
                                   for e in graded])
    for e, res in zip(graded, results, strict=True):
        e.final = res
        e.solved = res.status == "ok" and res.verdict == Verdict.accepted
    for e in episodes:
        e.reward = episode_reward(e.solved, sum(e.invalid), invalid_penalty)
