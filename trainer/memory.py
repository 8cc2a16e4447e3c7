"""`rlef train --dry-run`: the per-GPU memory plan of a config, without loading weights.

The model is built from its config on the meta device (no memory, no download of
weights), so the parameter counts are the real ones. Bytes follow what the trainer
allocates (trainer/models.py): trainable weights fp32 with fp32 gradients and AdamW's two
fp32 moments; frozen weights in the compute dtype; under LoRA one frozen base shared by
policy, reference and value, each of policy and value with its own adapter. Full
fine-tuning states are divided over `gpus` as FSDP would shard them (full sharding).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from trainer.config import TrainConfig

GiB = 1024**3


class MemoryPlan(BaseModel):
    model: str
    parameters: int
    adapter_parameters: int
    gpus: int
    rows: list[tuple[str, float]]  # (what, GiB per GPU)

    @property
    def total(self) -> float:
        return sum(v for _, v in self.rows)

    def table(self) -> str:
        lines = [f"memory plan per GPU: {self.model} ({self.parameters / 1e9:.2f}B parameters"
                 + (f", LoRA {self.adapter_parameters / 1e6:.1f}M per adapter"
                    if self.adapter_parameters else "") + f", {self.gpus} GPU(s))"]
        lines += [f"  {k:<52}{v:>8.1f} GiB" for k, v in self.rows]
        lines.append(f"  {'total':<52}{self.total:>8.1f} GiB")
        return "\n".join(lines)


def meta_model(config: Any) -> nn.Module:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model: nn.Module = AutoModelForCausalLM.from_config(config)
    return model


def lora_parameters(model: nn.Module, r: int) -> int:
    """peft's target_modules="all-linear": every nn.Linear but the output head."""
    head = model.get_output_embeddings()  # type: ignore[operator]
    return sum(r * (m.in_features + m.out_features) for m in model.modules()
               if isinstance(m, nn.Linear) and m is not head)


def plan(cfg: TrainConfig, config: Any, gpus: int = 1, name: str = "") -> MemoryPlan:
    model = meta_model(config)
    n = sum(p.numel() for p in model.parameters())
    bf16 = cfg.precision != "fp32"
    half = 2 if bf16 else 4
    train = 16  # fp32 weight + fp32 gradient + two fp32 AdamW moments
    rows: list[tuple[str, float]] = []
    adapter = lora_parameters(model, cfg.lora_r) if cfg.lora_r else 0
    if cfg.lora_r:
        rows.append(("frozen base, shared by policy/reference/value", n * half / GiB))
        rows.append(("policy adapter: weights, gradients, AdamW (fp32)", adapter * train / GiB))
        if cfg.advantage == "ppo":
            rows.append(("value adapter + head: weights, gradients, AdamW",
                         (adapter + config.hidden_size + 1) * train / GiB))
    else:
        rows.append(("policy: fp32 master weights" + (" (sharded)" if gpus > 1 else ""),
                     n * 4 / gpus / GiB))
        rows.append(("policy: fp32 gradients", n * 4 / gpus / GiB))
        rows.append(("policy: AdamW moments (fp32)", n * 8 / gpus / GiB))
        rows.append(("reference (frozen, " + ("bf16" if bf16 else "fp32") + ")",
                     n * half / gpus / GiB))
        if cfg.advantage == "ppo":
            rows.append(("value: weights, gradients, AdamW (fp32)", n * train / gpus / GiB))
    seq = cfg.max_new_tokens * cfg.max_turns + 2048  # a last turn's prompt holds the dialogue
    batch = cfg.micro_batch or cfg.minibatch
    hidden, layers = config.hidden_size, config.num_hidden_layers
    # activations: with checkpointing one hidden state per layer boundary, else ~16 per layer
    per_layer = 1 if cfg.gradient_checkpointing else 16
    rows.append((f"activations ({batch} x {seq} tokens, "
                 + ("checkpointed" if cfg.gradient_checkpointing else "stored") + ")",
                 batch * seq * hidden * layers * per_layer * half / GiB))
    chunk = min(cfg.logprob_chunk, batch * cfg.max_new_tokens)
    rows.append((f"log-prob head: {chunk} tokens x {config.vocab_size} vocab, fp32",
                 3 * chunk * config.vocab_size * 4 / GiB))
    return MemoryPlan(model=name or cfg.model, parameters=n, adapter_parameters=adapter,
                      gpus=gpus, rows=rows)


def llama31_8b_config() -> Any:
    """Llama-3.1-8B's published hyperparameters (its config.json), built by hand."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                       max_position_embeddings=131072,
                       rms_norm_eps=1e-5, tie_word_embeddings=False)


LLAMA_8B = ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B")


def model_config(path: str) -> Any:
    """The model's config (no weights); the README's Llama-3.1-8B without a download."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, local_files_only=path in LLAMA_8B)
    except OSError:
        if path in LLAMA_8B:
            return llama31_8b_config()
        raise
