"""Brief supervised warm-up on the answer *format* (used for the tiny model only)."""

from __future__ import annotations

import random

import torch

from trainer.data import Problem
from trainer.policy import chat_ids, token_logprobs
from trainer.rollout import Message, first_prompt, retry_prompt


def format_examples(problems: list[Problem], n: int, seed: int) -> list[tuple[list[Message], str]]:
    """Conversations of one or two turns whose answers are random digits in a code block.

    The second-turn answer is drawn independently of the feedback, so this teaches the
    format and nothing about reading feedback: that part is left to RL.
    """
    rng = random.Random(seed)

    def answer() -> str:
        return f"```python\nprint({rng.randrange(10)})\n```"

    out = []
    for _ in range(n):
        p = rng.choice(problems)
        conv: list[Message] = [{"role": "user", "content": first_prompt(p)}]
        if rng.random() < 0.5:
            wrong, right = rng.sample(range(10), 2)
            feedback = ("Your code failed the following tests:\n\n"
                        f"- input '' failed: Expected output '{right}' but got '{wrong}'")
            conv += [{"role": "assistant", "content": f"```python\nprint({wrong})\n```"},
                     {"role": "user", "content": retry_prompt(feedback, "python")}]
        out.append((conv, answer()))
    return out


def supervised(model: torch.nn.Module, tok, examples: list[tuple[list[Message], str]],  # type: ignore[no-untyped-def]
               epochs: int = 1, lr: float = 3e-3, batch: int = 16) -> float:
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        for s in range(0, len(examples), batch):
            chunk = examples[s:s + batch]
            prompts = [chat_ids(tok, conv) for conv, _ in chunk]
            answers = [tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                       for _, text in chunk]
            logp, mask = token_logprobs(model, prompts, answers, tok.pad_token_id, device)
            loss = -(logp * mask).sum() / mask.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return float(loss)
