"""Multi-turn RLEF episodes: write code, run it on the public tests, read the feedback, retry.

Pure pieces (prompts, code extraction, rewards) are plain functions; `run_episodes`
drives a batch of episodes in lock-step so that each turn's executions go to the service
together (`execute_many`) and its workers run them in parallel.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
    statement = problem.statement
    if problem.starter_code and problem.starter_code.strip() not in statement:
        # call-based problems: the function the tests call is part of the question
        statement += f"\n\nStarter code:\n```{lang}\n{problem.starter_code.rstrip()}\n```"
    return (f"Provide a {DISPLAY[lang]} solution for the following competitive programming "
            f"question: {statement}\n\n{instruction(lang)}")


def retry_prompt(feedback: str, language: str) -> str:
    return f"{feedback}\n\nGive it another try.\n{instruction(language)}"


def extract_code(response: str, language: str) -> str | None:
    """The last non-empty block fenced with the language's tag; an untagged block only
    when no tagged one exists (a trailing untagged block is often sample output)."""
    blocks = re.findall(r"```([\w+#-]*)[ \t]*\n?(.*?)```", response, flags=re.S)
    names = FENCE_NAMES[language]
    for wanted in (lambda tag: tag.lower() in names, lambda tag: tag == ""):
        for tag, body in reversed(blocks):
            if wanted(tag) and body.strip():
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
    reward: float = 0.0
    dropped: bool = False  # the service failed (sandbox_error) even after retries

    @property
    def invalid(self) -> list[bool]:
        return [t.code is None for t in self.turns]

    def last_code(self) -> str | None:
        """The final attempt's code (None when the last turn had no code block)."""
        return self.turns[-1].code if self.turns else None


@dataclass
class RolloutStats:
    generate_s: float = 0.0
    exec_wait_s: float = 0.0  # time blocked on the service after generation finished
    dropped: int = 0
    retried: int = 0


class Generator(Protocol):
    def generate(self, conversations: list[list[Message]]) -> list[Generation]: ...


class Executor(Protocol):
    def execute_many(self, requests: Sequence[ExecuteRequest],
                     progress: bool = False) -> list[ExecuteResult]: ...


def request(problem: Problem, code: str, private: bool) -> ExecuteRequest:
    tests = problem.public_tests + (problem.private_tests if private else [])
    return ExecuteRequest(language=problem.language, code=code, tests=tests,
                          limits=problem_limits(problem), feedback_style="rlef")


def execute(client: Executor, requests: list[ExecuteRequest], retries: int,
            stats: RolloutStats) -> list[ExecuteResult]:
    """Results; a sandbox_error (the service's failure, not the program's) is retried."""
    results = client.execute_many(requests)
    for _ in range(retries):
        again = [i for i, r in enumerate(results) if r.status == "sandbox_error"]
        if not again:
            break
        stats.retried += len(again)
        for i, res in zip(again, client.execute_many([requests[i] for i in again]),
                          strict=True):
            results[i] = res
    return results


def generate_and_run(policy: Generator, client: Executor, episodes: list[Episode],
                     convs: list[list[Message]], active: list[int], retries: int,
                     stats: RolloutStats, pool: ThreadPoolExecutor) -> None:
    """One turn of the active episodes: each generation batch's code goes to the service
    while the next batch generates."""
    size = getattr(policy, "gen_batch", 0) or len(active)
    pending: list[tuple[list[int], Future[list[ExecuteResult]]]] = []
    for start in range(0, len(active), size):
        chunk = active[start:start + size]
        t0 = time.perf_counter()
        gens = policy.generate([convs[i] for i in chunk])
        stats.generate_s += time.perf_counter() - t0
        runs = []
        for i, gen in zip(chunk, gens, strict=True):
            code = extract_code(gen.text, episodes[i].problem.language)
            episodes[i].turns.append(Turn(list(convs[i]), gen, code))
            if code is not None:
                runs.append(i)
        reqs = [request(episodes[i].problem, episodes[i].turns[-1].code or "", private=False)
                for i in runs]
        pending.append((runs, pool.submit(execute, client, reqs, retries, stats)))
    t0 = time.perf_counter()
    for runs, future in pending:
        for i, res in zip(runs, future.result(), strict=True):
            episodes[i].turns[-1].result = res
            episodes[i].dropped = res.status == "sandbox_error"
    stats.exec_wait_s += time.perf_counter() - t0


def run_episodes(problems: list[Problem], policy: Generator, client: Executor, max_turns: int,
                 invalid_penalty: float = -0.2, retries: int = 2,
                 stats: RolloutStats | None = None,
                 blind_feedback: str | None = None) -> list[Episode]:
    """Episodes of up to max_turns; those the service failed on are marked `dropped`.

    blind_feedback replaces every failure's feedback text (a control: what is the
    feedback's content worth?)."""
    stats = stats if stats is not None else RolloutStats()
    episodes = [Episode(p) for p in problems]
    convs: list[list[Message]] = [[{"role": "user", "content": first_prompt(p)}]
                                  for p in problems]
    active = list(range(len(problems)))
    with ThreadPoolExecutor(2, thread_name_prefix="execute") as pool:
        for _ in range(max_turns):
            generate_and_run(policy, client, episodes, convs, active, retries, stats, pool)
            still = []
            for i in active:
                last = episodes[i].turns[-1]
                if episodes[i].dropped or (last.result is not None
                                           and last.result.verdict == Verdict.accepted):
                    continue
                feedback = last.result.feedback if last.result is not None else NO_CODE_FEEDBACK
                feedback = blind_feedback or feedback
                convs[i] += [{"role": "assistant", "content": last.response},
                             {"role": "user", "content": retry_prompt(feedback,
                                                                      problems[i].language)}]
                still.append(i)
            active = still
            if not active:
                break
    score(episodes, client, invalid_penalty, retries, stats)
    stats.dropped += sum(e.dropped for e in episodes)
    return episodes


def score(episodes: list[Episode], client: Executor, invalid_penalty: float,
          retries: int = 2, stats: RolloutStats | None = None) -> None:
    """The final attempt on public + private tests sets the reward."""
    graded = [e for e in episodes if e.last_code() is not None and not e.dropped]
    results = execute(client, [request(e.problem, e.last_code() or "", private=True)
                               for e in graded], retries, stats or RolloutStats())
    for e, res in zip(graded, results, strict=True):
        e.dropped = res.status == "sandbox_error"
        e.solved = res.status == "ok" and res.verdict == Verdict.accepted
    for e in episodes:
        e.reward = episode_reward(e.solved, sum(e.invalid), invalid_penalty)
