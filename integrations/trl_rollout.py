"""TRL `rollout_func`: multi-turn RLEF episodes inside GRPO.

Each episode: the model answers, its code runs on the problem's public tests, and while
tests fail (up to `max_turns`) the service's feedback becomes the next user turn. The
completion TRL trains on is the whole exchange; the feedback tokens carry `env_mask` 0 so
only the model's own tokens get gradient. The last program goes to the reward functions
as the extra field `rlef_final_code` (see integrations.trl.rlef_reward).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from integrations.extract import extract_code
from integrations.ground_truth import to_tests
from integrations.trl import FINAL_CODE, score_codes
from service.client import ExecutionClient
from service.schema import Limits, Test, Verdict

# no backticks here: in veRL the whole exchange is one response string, and a fence in the
# feedback would pair up with the model's next one when the reward extracts the code
RETRY = "{feedback}\n\nFix the program. Reply with the whole corrected program in one " \
        "fenced {language} code block."


@dataclass
class Episode:
    messages: list[dict[str, str]]
    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    code: str | None = None
    turns: int = 0
    done: bool = False


def prompt_key(prompt: Any) -> str:
    """The text a rollout looks its tests up by: the prompt, or its last user message."""
    if isinstance(prompt, str):
        return prompt
    return str([m for m in prompt if m.get("role") == "user"][-1]["content"])


def _messages(prompt: Any) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _render(tok: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return str(tok.apply_chat_template(messages, tokenize=False,
                                       add_generation_prompt=generation_prompt))


def _ids(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def _generate(trainer: Any, episodes: list[Episode]) -> list[list[int]]:
    """One sampled turn for each episode, cut after its first end-of-sequence token."""
    tok, model = trainer.processing_class, trainer.accelerator.unwrap_model(trainer.model)
    seqs = [e.prompt_ids + e.completion_ids for e in episodes]
    width = max(map(len, seqs))
    pad = tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=model.device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=model.device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask,
                             generation_config=trainer.generation_config)
    eos = set(trainer.eos_token_ids)
    turns = []
    for row in out[:, width:].tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        turns.append([t for t in row[:cut] if t != pad or t in eos])
    return turns


def _feedback_ids(tok: Any, episode: Episode, reply: str, feedback: str) -> list[int]:
    """The template's tokens between the model's turn and its next one."""
    said = [*episode.messages, {"role": "assistant", "content": reply}]
    base = _render(tok, said, False)
    episode.messages = [*said, {"role": "user", "content": feedback}]
    return _ids(tok, _render(tok, episode.messages, True)[len(base):])


def rlef_rollout(url: str, public_tests: Mapping[str, Any], *, language: str = "python",
                 max_turns: int = 3, limits: Limits | None = None,
                 token: str | None = None) -> Callable[[list[Any], Any], dict[str, Any]]:
    """`public_tests` maps each prompt (see `prompt_key`) to its public tests in any shape
    `integrations.ground_truth.to_tests` reads."""
    client = ExecutionClient(url, token=token)
    suites: dict[str, list[Test]] = {k: to_tests(v) for k, v in public_tests.items()}
    run_limits = limits or Limits()

    def rollout(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        tok = trainer.processing_class
        episodes = [Episode(_messages(p), _ids(tok, _render(tok, _messages(p), True)))
                    for p in prompts]
        keys = [prompt_key(p) for p in prompts]
        for turn in range(max_turns):
            live = [i for i, e in enumerate(episodes) if not e.done]
            if not live:
                break
            replies = _generate(trainer, [episodes[i] for i in live])
            texts = tok.batch_decode(replies, skip_special_tokens=True)
            codes = [extract_code(t, language) for t in texts]
            results = asyncio.run(score_codes(client, codes, [suites[keys[i]] for i in live],
                                              [language] * len(live), run_limits))
            for j, i in enumerate(live):
                ep = episodes[i]
                ep.completion_ids += replies[j]
                ep.env_mask += [1] * len(replies[j])
                ep.code, ep.turns = codes[j], turn + 1
                res = results[j]
                passed = res is not None and res.verdict == Verdict.accepted
                # a sandbox failure is not the model's: no feedback turn to learn from
                ep.done = passed or turn == max_turns - 1 or (
                    res is not None and res.status == "sandbox_error")
                if not ep.done:
                    note = res.feedback if res is not None else "No code block found."
                    extra = _feedback_ids(tok, ep, texts[j],
                                          RETRY.format(feedback=note, language=language))
                    ep.completion_ids += extra
                    ep.env_mask += [0] * len(extra)
        return {"prompt_ids": [e.prompt_ids for e in episodes],
                "completion_ids": [e.completion_ids for e in episodes],
                "logprobs": None, "env_mask": [e.env_mask for e in episodes],
                FINAL_CODE: [e.code for e in episodes],
                "rlef_turns": [e.turns for e in episodes]}

    return rollout
