"""The networks a run holds: the policy, the frozen reference and the value model.

Precision: in bf16 mode every *trainable* weight stays fp32 (the master copy the optimiser
updates, with fp32 optimiser state) and the forward passes run under bf16 autocast; frozen
weights (the reference, or the shared base under LoRA) are stored in bf16. Storing
trainable weights in bf16 would round almost every update at the paper's lr 2e-7 to zero.

Under LoRA the three networks share one frozen base: the policy is the "default" adapter,
the reference is the base with adapters off, and the value model is a second adapter
("value") plus an fp32 linear head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

VALUE_ADAPTER = "value"


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """'auto': bf16 on CUDA, fp32 on CPU."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return torch.bfloat16 if precision == "bf16" else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def no_dropout(model: Any) -> Any:
    # PPO ratios compare two forward passes of the same weights: dropout would make them
    # differ by noise alone, so it is off everywhere (as in TRL, OpenRLHF, veRL).
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def load_lm(path: str, device: torch.device, dtype: torch.dtype = torch.float32) -> Any:
    """A Hugging Face causal LM (typed Any: HF's own annotations are too loose for mypy)."""
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    return no_dropout(model).to(device)


def frozen(model: Any) -> Any:
    return model.eval().requires_grad_(False)


def lora_config(r: int, alpha: int) -> Any:
    try:
        from peft import LoraConfig
    except ImportError as e:
        raise RuntimeError("lora_r > 0 needs peft: pip install 'rlef[train]'") from e
    return LoraConfig(r=r, lora_alpha=alpha, target_modules="all-linear", task_type="CAUSAL_LM")


def fp32_trainable(model: Any) -> Any:
    """Adapters on a bf16 base train in fp32 (their master weights)."""
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    return model


def add_lora(model: Any, r: int, alpha: int) -> Any:
    """LoRA adapters on every linear layer (peft) of a frozen base."""
    from peft import get_peft_model

    return fp32_trainable(get_peft_model(model, lora_config(r, alpha)))


def load_lora(base_path: str, adapter_path: str, device: torch.device,
              dtype: torch.dtype) -> Any:
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_lm(base_path, device, dtype), adapter_path,
                                      is_trainable=True)
    return fp32_trainable(model)


@contextmanager
def active_adapter(model: Any, name: str) -> Iterator[None]:
    """Run with one adapter active; the policy's ("default") is restored afterwards.

    peft's set_adapter also freezes the inactive adapters: every adapter keeps the
    trainability it had, so each still receives the gradients of its own forward pass."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.set_adapter(name)
    try:
        yield
    finally:
        model.set_adapter("default")
        for p, flag in flags:
            p.requires_grad_(flag)


class ValueModel(nn.Module):
    """V(prompt): a backbone plus a fresh fp32 linear head on the last prompt token.

    The backbone is either a network of its own (full fine-tuning) or the policy's peft
    model, run with the value adapter (LoRA): then no second copy of the base exists."""

    def __init__(self, backbone: Any, adapter: str | None = None) -> None:
        super().__init__()
        self.backbone, self.adapter = backbone, adapter
        self.head = nn.Linear(backbone.config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.head.to(next(backbone.parameters()).device)

    @classmethod
    def on_adapter(cls, policy: Any, r: int, alpha: int) -> ValueModel:
        policy.add_adapter(VALUE_ADAPTER, lora_config(r, alpha))
        for n, p in policy.named_parameters():
            if f".{VALUE_ADAPTER}." in n:
                p.requires_grad_(True)
                p.data = p.data.float()
        return cls(policy, VALUE_ADAPTER)

    def trainable(self) -> list[nn.Parameter]:
        """The value's own weights (with an adapter: its adapter and the head only)."""
        if self.adapter is None:
            return list(self.parameters())
        own = [p for n, p in self.backbone.named_parameters() if f".{self.adapter}." in n]
        return own + list(self.head.parameters())

    def own_state(self) -> dict[str, torch.Tensor]:
        if self.adapter is None:
            return self.state_dict()
        ids = {id(p) for p in self.trainable()}
        return {n: p.detach() for n, p in self.named_parameters() if id(p) in ids}

    def load_own_state(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state, strict=self.adapter is None)

    def forward(self, prompts: list[list[int]], pad_id: int) -> torch.Tensor:
        from trainer.policy import pad

        ids, attn = pad(prompts, pad_id)
        device = self.head.weight.device
        with (active_adapter(self.backbone, self.adapter) if self.adapter
              else nullcontext()):
            out = self.backbone(input_ids=ids.to(device), attention_mask=attn.to(device),
                                output_hidden_states=True, logits_to_keep=1)
        last = torch.tensor([len(p) - 1 for p in prompts], device=device)
        h = out.hidden_states[-1][torch.arange(len(prompts), device=device), last]  # [N, H]
        return self.head(h.float()).squeeze(-1)  # [N]


def memory_line(modules: list[nn.Module], base: nn.Module) -> str:
    """`parameters in memory: X.XX× the base model (trainable: N)`, from the tensors
    actually allocated on this rank (a shard under fsdp): a storage shared by several
    modules counts once."""
    from trainer.dist import local

    storages: dict[int, int] = {}
    trainable: dict[int, int] = {}
    for module in modules:
        for param in module.parameters():
            t = local(param)
            if t.is_floating_point():
                storage = t.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes() // t.element_size()
            if param.requires_grad:
                trainable[id(param)] = param.numel()
    base_n = sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n)
    return (f"parameters in memory: {sum(storages.values()) / base_n:.2f}\u00d7 the base "
            f"model (trainable: {sum(trainable.values()):,})")
