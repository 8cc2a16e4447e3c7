"""Hugging Face policy and value networks: generation and per-token log-probabilities.

Any causal LM with a chat template works. bf16 on CUDA, fp32 on CPU. The value model is a
separate network (a copy of the starting policy's backbone) with a fresh linear head that
reads the last token of each turn's prompt.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from trainer.rollout import Generation, Message


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_lm(path: str, device: torch.device) -> Any:
    """A Hugging Face causal LM (typed Any: HF's own annotations are too loose for mypy)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    # PPO ratios compare two forward passes of the same weights: dropout would make them
    # differ by noise alone, so it is off everywhere (as in TRL, OpenRLHF, veRL).
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model.to(device)


def add_lora(model: Any, r: int, alpha: int) -> Any:
    """LoRA adapters on every linear layer (peft); the reference policy is then the same
    network with its adapters switched off, so it costs no second copy of the weights."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise RuntimeError("lora_r > 0 needs peft: pip install 'rlef[train]'") from e
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules="all-linear",
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def load_lora(base_path: str, adapter_path: str, device: torch.device) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(load_lm(base_path, device), adapter_path,
                                     is_trainable=True)


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


class Policy:
    def __init__(self, model: Any, tok: PreTrainedTokenizerBase, device: torch.device,
                 max_new_tokens: int = 512, temperature: float = 1.0, top_p: float = 1.0,
                 gen_batch: int = 32) -> None:
        self.model, self.tok, self.device = model, tok, device
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.gen_batch = gen_batch
        config = model.config
        self.context = int(getattr(config, "max_position_embeddings", 0)
                           or getattr(config, "n_positions", 0) or 1 << 30)
        self.truncated = 0

    def prompt_ids(self, conversation: list[Message]) -> list[int]:
        """The chat-templated prompt, cut from the left to leave room for the answer."""
        ids = chat_ids(self.tok, conversation)
        room = self.context - self.max_new_tokens
        if len(ids) > room:
            self.truncated += 1
            ids = ids[len(ids) - room:]
        return ids

    @torch.no_grad()
    def generate(self, conversations: list[list[Message]]) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(conversations), self.gen_batch):
            out += self._generate(conversations[start:start + self.gen_batch])
        return out

    def _generate(self, conversations: list[list[Message]]) -> list[Generation]:
        prompts = [self.prompt_ids(c) for c in conversations]
        ids, mask = pad(prompts, self.tok.pad_token_id, left=True)
        self.model.eval()
        seqs = self.model.generate(
            input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
            do_sample=self.temperature > 0, temperature=self.temperature or None,
            top_p=self.top_p, max_new_tokens=self.max_new_tokens,
            pad_token_id=self.tok.pad_token_id, eos_token_id=self.tok.eos_token_id)
        gens = []
        for prompt, seq in zip(prompts, seqs[:, ids.shape[1]:].tolist(), strict=True):
            if self.tok.eos_token_id in seq:
                seq = seq[: seq.index(self.tok.eos_token_id) + 1]
            else:
                seq = [t for t in seq if t != self.tok.pad_token_id]
            text = str(self.tok.decode(seq, skip_special_tokens=True))
            gens.append(Generation(text=text, prompt_ids=prompt, response_ids=seq))
        return gens


def token_logprobs(model: Any, prompts: list[list[int]], responses: list[list[int]],
                   pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each response token given its prompt. -> logp [N, L], mask [N, L]"""
    seqs = [p + r for p, r in zip(prompts, responses, strict=True)]
    ids, attn = pad(seqs, pad_id)
    ids, attn = ids.to(device), attn.to(device)
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()  # [N, S-1, V]
    logp_all = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    width = max(len(r) for r in responses)
    logp = torch.zeros(len(seqs), width, device=device)
    mask = torch.zeros(len(seqs), width, device=device)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        logp[i, :len(r)] = logp_all[i, len(p) - 1: len(p) - 1 + len(r)]
        mask[i, :len(r)] = 1
    return logp, mask


class ValueModel(nn.Module):
    """V(prompt): a causal-LM backbone plus a fresh linear head on the last prompt token."""

    def __init__(self, backbone: Any) -> None:
        super().__init__()
        self.backbone = backbone
        hidden = backbone.config.hidden_size
        self.head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.head.to(next(backbone.parameters()).device)

    def forward(self, prompts: list[list[int]], pad_id: int) -> torch.Tensor:
        ids, attn = pad(prompts, pad_id)
        device = next(self.parameters()).device
        out = self.backbone(input_ids=ids.to(device), attention_mask=attn.to(device),
                            output_hidden_states=True)
        last = torch.tensor([len(p) - 1 for p in prompts], device=device)
        h = out.hidden_states[-1][torch.arange(len(prompts), device=device), last]  # [N, H]
        return self.head(h.float()).squeeze(-1)  # [N]
