"""The policy as a text generator, and per-token log-probabilities of its responses.

Log-probs never build the full-vocabulary fp32 logits over every position: the model's
output head is bypassed, and the head runs on the response positions only, a chunk of
tokens at a time (recomputed in the backward pass rather than stored).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedTokenizerBase

from trainer.models import autocast
from trainer.rollout import Generation, Message

LOGPROB_CHUNK = 1024  # response tokens per pass of the output head


def pad(seqs: list[list[int]], value: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of ids -> ids [B, L] and attention mask [B, L]."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), value, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if left:
            ids[i, width - len(s):], mask[i, width - len(s):] = torch.tensor(s), 1
        else:
            ids[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
    return ids, mask


def chat_ids(tok: PreTrainedTokenizerBase, messages: list[Message]) -> list[int]:
    ids: Any = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return list(ids)


def stop_ids(model: Any, tok: PreTrainedTokenizerBase) -> list[int]:
    """Every end-of-turn id: the tokenizer's eos and the generation config's (Llama 3.1
    lists three)."""
    ids = [tok.eos_token_id]
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids += configured if isinstance(configured, list) else [configured]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


class Policy:
    def __init__(self, model: Any, tok: PreTrainedTokenizerBase, device: torch.device,
                 max_new_tokens: int = 512, temperature: float = 1.0, top_p: float = 1.0,
                 gen_batch: int = 32, dtype: torch.dtype = torch.float32) -> None:
        self.model, self.tok, self.device, self.dtype = model, tok, device, dtype
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.gen_batch = gen_batch
        self.stop = stop_ids(model, tok)
        config = model.config
        self.context = int(getattr(config, "max_position_embeddings", 0)
                           or getattr(config, "n_positions", 0) or 1 << 30)
        self.truncated = 0  # prompts cut from the left; the trainer logs it per step

    def prompt_ids(self, conversation: list[Message]) -> list[int]:
        """The chat-templated prompt, cut from the left to leave room for the answer."""
        ids = chat_ids(self.tok, conversation)
        room = self.context - self.max_new_tokens
        if len(ids) > room:
            self.truncated += 1
            ids = ids[len(ids) - room:]
        return ids

    def generate(self, conversations: list[list[Message]]) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(conversations), self.gen_batch):
            out += self.generate_batch(conversations[start:start + self.gen_batch])
        return out

    @torch.no_grad()
    def generate_batch(self, conversations: list[list[Message]]) -> list[Generation]:
        prompts = [self.prompt_ids(c) for c in conversations]
        ids, mask = pad(prompts, self.tok.pad_token_id, left=True)
        self.model.eval()
        with autocast(self.device, self.dtype):
            seqs = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                do_sample=self.temperature > 0, temperature=self.temperature or None,
                top_p=self.top_p, max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tok.pad_token_id, eos_token_id=self.stop)
        gens = []
        for prompt, seq in zip(prompts, seqs[:, ids.shape[1]:].tolist(), strict=True):
            end = next((i for i, t in enumerate(seq) if t in self.stop), None)
            if end is not None:
                seq = seq[: end + 1]
            else:
                seq = [t for t in seq if t != self.tok.pad_token_id]
            text = str(self.tok.decode(seq, skip_special_tokens=True))
            gens.append(Generation(text=text, prompt_ids=prompt, response_ids=seq))
        return gens


@contextmanager
def hidden_states_out(model: Any) -> Iterator[nn.Module]:
    """The model returns its final hidden states as `logits`; yields the real head."""
    head = model.get_output_embeddings()
    model.set_output_embeddings(nn.Identity())
    try:
        yield head
    finally:
        model.set_output_embeddings(head)


def _chunk_logprobs(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor
                    ) -> torch.Tensor:
    # outside autocast: the head runs in its weights' own precision (fp32 master weights
    # under full fine-tuning), as PPO ratios of two passes are sensitive to logit rounding
    dtype = next(head.parameters()).dtype
    with torch.autocast(hidden.device.type, enabled=False):
        logits = head(hidden.to(dtype)).float()                # [C, V]
    return torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1)


def token_logprobs(model: Any, prompts: list[list[int]], responses: list[list[int]],
                   pad_id: int, device: torch.device,
                   chunk: int = LOGPROB_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each response token given its prompt. -> logp [N, L], mask [N, L]"""
    seqs = [p + r for p, r in zip(prompts, responses, strict=True)]
    ids, attn = pad(seqs, pad_id)
    ids, attn = ids.to(device), attn.to(device)
    with hidden_states_out(model) as head:
        hidden = model(input_ids=ids, attention_mask=attn).logits      # [N, S, H]
    # the positions that predict response tokens: p-1 .. p+r-2 of each sequence
    rows = torch.tensor([i for i, r in enumerate(responses) for _ in r], device=device)
    cols = torch.tensor([len(p) - 1 + j for p, r in zip(prompts, responses, strict=True)
                         for j in range(len(r))], device=device)
    h, targets = hidden[rows, cols], ids[rows, cols + 1]               # [T, H], [T]
    parts = []
    for s in range(0, len(targets), chunk):
        args = (head, h[s:s + chunk], targets[s:s + chunk])
        parts.append(checkpoint(_chunk_logprobs, *args, use_reentrant=False)
                     if torch.is_grad_enabled() else _chunk_logprobs(*args))
    flat = torch.cat(parts)
    width = max(len(r) for r in responses)
    logp = torch.zeros(len(seqs), width, device=device, dtype=flat.dtype)
    mask = torch.zeros(len(seqs), width, device=device)
    within = torch.tensor([j for r in responses for j in range(len(r))], device=device)
    logp = logp.index_put((rows, within), flat)
    mask[rows, within] = 1
    return logp, mask
