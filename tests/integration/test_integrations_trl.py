"""TRL adapters against a real rlef service: the async reward function and the multi-turn
RLEF rollout, each driving `GRPOTrainer` for 2 steps with the repo's tiny model on CPU."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations.trl import reward_of, rlef_reward
from integrations.trl_rollout import prompt_key, rlef_rollout
from service.schema import ExecuteResult, StdioTest
from tests.integration.rlef_server import rlef_serve

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with rlef_serve(tmp_path_factory.mktemp("svc") / "serve.log", "--pool-size", "2") as u:
        yield u


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("tiny") / "model"
    rlef = str(Path(sys.executable).parent / "rlef")
    res = subprocess.run([rlef, "tiny-model", str(out), "--warmup-examples", "1500"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return str(out)


PROMPT = ("Provide a Python solution for the following competitive programming question: "
          "Print the secret digit.\n\nYour code should be enclosed in triple backticks like "
          "so: ```python YOUR CODE HERE ```. Use the backticks for your code only.")


def rows() -> list[dict[str, Any]]:
    """The tiny model's own task (trainer/tiny.py): print a digit that only the public test's
    feedback reveals. Scored with `partial` on ten tests, one per digit: 0.1 for any program
    that prints a digit, 0 for a malformed answer, so that a weak model's group of samples
    has reward variance and GRPO a signal."""
    out = []
    for n in (3, 7, 1, 8):
        every_digit = [StdioTest(expected_stdout=str(d)).model_dump() for d in range(10)]
        prompt = [{"role": "user", "content": PROMPT + f" (#{n})"}]
        out.append({"prompt": prompt, "tests": every_digit,
                    "public": [StdioTest(expected_stdout=str(n)).model_dump()]})
    return out


def run(aw: Awaitable[list[float | None]]) -> list[float | None]:
    async def wait() -> list[float | None]:
        return await aw

    return asyncio.run(wait())


def test_reward_scores_through_the_service(url: str) -> None:
    reward = rlef_reward(url)
    completions = [[{"role": "assistant", "content": "```python\nprint(7)\n```"}],
                   "here:\n```python\nprint(8)\n```", "no code at all",
                   "```python\nraise SystemExit(3)\n```"]
    tests = [[StdioTest(expected_stdout="7").model_dump()]] * 4
    got = run(reward(prompts=[""] * 4, completions=completions, tests=tests))
    assert got == [1.0, 0.0, 0.0, 0.0]
    partial = rlef_reward(url, partial=True)
    two = [[{"expected_stdout": "7"}, {"stdin": "", "expected_stdout": "8"}]]
    assert run(partial(prompts=[""], completions=["```py\nprint(7)\n```"],
                               tests=two)) == [0.5]
    # veRL-style in/outs work as the tests column too
    io = '{"inputs": ["2 3\\n"], "outputs": ["5\\n"]}'
    code = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    assert run(reward(prompts=[""], completions=[code], tests=[io])) == [1.0]


def test_sandbox_error_is_no_reward() -> None:
    assert reward_of(ExecuteResult(status="sandbox_error", error="pool gone"), False) is None


def _config(tmp_path: Path) -> Any:
    from trl import GRPOConfig

    return GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=16, num_generations=8,
                      max_completion_length=24, max_steps=2, learning_rate=1e-4, use_cpu=True,
                      report_to=[], logging_steps=1, save_strategy="no", bf16=False,
                      dataloader_num_workers=0, seed=0)


def _trainer(tiny: str, tmp_path: Path, **kw: Any) -> Any:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    tok = AutoTokenizer.from_pretrained(tiny, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(tiny)
    return GRPOTrainer(model=model, processing_class=tok, args=_config(tmp_path),
                       train_dataset=Dataset.from_list(rows()), **kw)


def _rewards(trainer: Any) -> list[float]:
    return [h["reward"] for h in trainer.state.log_history if "reward" in h]


def test_grpo_trains_two_steps_on_the_reward(url: str, tiny: str, tmp_path: Path) -> None:
    trainer = _trainer(tiny, tmp_path, reward_funcs=rlef_reward(url, partial=True))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    assert trainer.state.global_step == 2
    assert len(_rewards(trainer)) == 2
    moved = any(not b.equal(p) for b, p in zip(before, trainer.model.parameters(), strict=True))
    assert moved, "two GRPO steps left every weight unchanged"


def test_grpo_with_the_multi_turn_rollout(url: str, tiny: str, tmp_path: Path) -> None:
    data = rows()
    public = {prompt_key(r["prompt"]): r["public"] for r in data}
    seen: list[dict[str, Any]] = []
    rollout = rlef_rollout(url, public, max_turns=2)

    def recording(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        out = rollout(prompts, trainer)
        seen.append(out)
        return out

    trainer = _trainer(tiny, tmp_path, reward_funcs=rlef_reward(url, partial=True),
                       rollout_func=recording)
    trainer.train()
    assert trainer.state.global_step == 2 and len(_rewards(trainer)) == 2
    episodes = [(ids, mask, turns) for out in seen for ids, mask, turns in
                zip(out["completion_ids"], out["env_mask"], out["rlef_turns"], strict=True)]
    assert all(len(ids) == len(mask) for ids, mask, _ in episodes)
    retried = [mask for _, mask, turns in episodes if turns == 2]
    assert retried, "no episode got a feedback turn"
    # the feedback turn is the environment's: masked out of the loss
    assert all(0 in mask and mask[0] == 1 for mask in retried)
