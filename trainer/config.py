"""One training config: defaults (RLEF paper, 8B-class), then a YAML file, then the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_url: str = "http://127.0.0.1:8000"
    model: str = Field("", description="HF causal LM path or name")
    data: str = Field("", description="JSONL problem file, or 'synthetic'")
    eval_data: str | None = None
    out_dir: str = "runs/rlef"
    seed: int = 0
    device: str = "auto"

    # episodes
    steps: int = 100
    problems_per_step: int = 32
    max_turns: int = 3
    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    invalid_penalty: float = -0.2
    async_rollouts: bool = Field(False, description="roll out the next batch with a one-step-"
                                                    "stale copy of the policy while training "
                                                    "on this one (importance-corrected)")

    gen_batch: int = Field(32, description="conversations per generate() call; each batch's "
                                           "code executes while the next one generates")
    exec_retries: int = Field(2, description="re-runs of an execution the service failed "
                                             "(sandbox_error); then the episode is dropped")

    # PPO (RLEF App. A.1)
    advantage: Literal["ppo", "grpo", "rloo"] = "ppo"
    group_size: int = Field(4, description="samples per problem for grpo/rloo")
    beta: float = 0.05
    clip: float = 0.2
    value_clip: float = 0.2
    gamma: float = 1.0
    lam: float = 1.0
    ppo_epochs: int = 2
    minibatch: int = 16
    lr: float = 2e-7
    value_lr: float | None = None
    weight_decay: float = 0.1
    warmup_steps: int = 50
    max_grad_norm: float = 1.0
    micro_batch: int = Field(0, description="sequences per forward pass; gradients are "
                                            "accumulated over the minibatch (0: all at once)")

    # precision and memory (an 8B model on one GPU): bf16 compute on fp32 master weights,
    # LoRA adapters (the value model then is an adapter on the same frozen base),
    # activation checkpointing, log-probs over response tokens in chunks
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="bf16: bf16 autocast over fp32 trainable weights and optimiser "
                            "state (frozen weights stored in bf16); auto: bf16 on CUDA")
    logprob_chunk: int = Field(1024, description="response tokens per output-head pass")
    fsdp: bool = Field(False, description="under torchrun: shard parameters, gradients and "
                                          "optimiser state over ranks (full fine-tuning)")
    lora_r: int = Field(0, description="LoRA rank (peft); 0 trains every weight")
    lora_alpha: int = 32
    gradient_checkpointing: bool = False

    # bookkeeping
    eval_every: int = 0
    eval_problems: int = 64
    eval_temperature: float = 0.2
    eval_top_p: float = 1.0
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    synthetic_problems: int = 512


def load_config(path: str | None, overrides: dict[str, Any]) -> TrainConfig:
    base: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of config keys")
        base.update(loaded)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.model_validate(base)
