"""Brief supervised warm-up for the tiny demo model: the answer format, and copying a digit.

The warm-up never shows feedback being used: feedback turns are answered with random
digits, drawn independently of what the feedback says. What it does teach is the code
block format and to print a digit the statement *gives* ("Print the digit 7."), a skill
a pre-trained LLM already has. Reading the expected output out of the feedback is left
to RL, so the policy starts at chance on the secret-digit task, on every turn.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from service.schema import TestResult, Verdict, render_feedback
from trainer.data import Problem
from trainer.policy import chat_ids, token_logprobs
from trainer.rollout import Message, first_prompt, retry_prompt

Example = tuple[list[Message], str]


def digit_feedback(expected: int, got: int) -> str:
    """What the service says when a program printed `got` instead of `expected`."""
    result = TestResult(verdict=Verdict.wrong_answer, input="", expected=str(expected),
                        actual=str(got))
    return render_feedback([result], ["stdio"])


def answer(digit: int) -> str:
    return f"```python\nprint({digit})\n```"


def format_examples(problems: list[Problem], n: int, seed: int,
                    feedback_share: float = 0.25) -> list[Example]:
    rng = random.Random(seed)
    out: list[Example] = []
    for _ in range(n):
        p, d = rng.choice(problems), rng.randrange(10)
        roll = rng.random()
        if roll < feedback_share:  # a retry, answered without looking at the feedback
            wrong, right = rng.sample(range(10), 2)
            feedback = digit_feedback(right, wrong)
            conv: list[Message] = [{"role": "user", "content": first_prompt(p)},
                                   {"role": "assistant", "content": answer(wrong)},
                                   {"role": "user", "content": retry_prompt(feedback, "python")}]
        elif roll < 0.5 + feedback_share / 2:  # the secret: a guess
            conv = [{"role": "user", "content": first_prompt(p)}]
        else:  # the statement gives the digit: copy it
            given = p.model_copy(update={"statement": f"Print the digit {d}."})
            conv = [{"role": "user", "content": first_prompt(given)}]
        out.append((conv, answer(d)))
    return out


def supervised(model: torch.nn.Module, tok: Any, examples: list[Example],
               epochs: int = 1, lr: float = 3e-3, batch: int = 16) -> float:
    """Cross-entropy on the answers only; returns the last batch's loss."""
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    total = epochs * ((len(examples) + batch - 1) // batch)
    # decay to zero: a tiny model at a high lr ends on a loss spike otherwise
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: max(0.0, 1 - i / total))
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
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
    return float(loss.detach())
