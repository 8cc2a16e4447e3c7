"""Memory: one frozen base under LoRA (value = adapter + head), the start-up line from the
tensors allocated, and the dry-run plan built on the meta device."""

import re
from pathlib import Path

import torch

from trainer.config import TrainConfig
from trainer.memory import llama31_8b_config, plan
from trainer.tiny import build_tiny_model
from trainer.train import Trainer


def ratio(line: str) -> float:
    m = re.match(r"parameters in memory: ([\d.]+)\u00d7 the base model \(trainable: [\d,]+\)$",
                 line)
    assert m, line
    return float(m.group(1))


def test_lora_shares_one_base_between_policy_reference_and_value(tmp_path: Path) -> None:
    model = str(build_tiny_model(tmp_path / "m", n_layer=1, n_embd=32, n_head=2))
    common = {"model": model, "data": "synthetic", "device": "cpu", "synthetic_problems": 4}
    full = Trainer(TrainConfig(**common, out_dir=str(tmp_path / "a")), client=object())
    assert ratio(full.memory) == 3.0  # policy, reference and value: three networks
    lora = Trainer(TrainConfig(**common, out_dir=str(tmp_path / "b"), lora_r=4),
                   client=object())
    assert ratio(lora.memory) < 1.2, lora.memory
    assert lora.ref is None and lora.value is not None and lora.value.backbone is lora.model
    own = {id(p) for p in lora.value_params}
    assert not own & {id(p) for p in lora.policy_params}
    # a value step changes the value adapter and head, not the policy's adapter
    assert lora.vopt is not None
    before = [p.detach().clone() for p in lora.policy_params]
    adapter = [p.detach().clone() for p in lora.value_params[:-2]]
    for _ in range(2):  # the head starts at zero: the adapter's gradient comes on step 2
        lora.vopt.zero_grad()
        v = lora.value([[5, 6, 7], [8, 9]], lora.pad_id)
        (v - torch.tensor([1.0, -1.0])).pow(2).mean().backward()
        lora.optimise(lora.value_params, lora.vopt)
    assert all(torch.equal(a, b) for a, b in zip(before, lora.policy_params, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(adapter, lora.value_params, strict=False))


def test_dry_run_plan_for_llama_8b_on_the_meta_device() -> None:
    cfg = TrainConfig(model="llama", lora_r=16, gradient_checkpointing=True, micro_batch=1,
                      precision="bf16")
    lora = plan(cfg, llama31_8b_config(), 1)
    assert 8.0e9 < lora.parameters < 8.1e9 and 40e6 < lora.adapter_parameters < 44e6
    assert 15 < lora.total < 24  # fits one 24+ GB GPU
    full = plan(cfg.model_copy(update={"lora_r": 0}), llama31_8b_config(), 8)
    rows = dict(full.rows)
    assert abs(rows["policy: AdamW moments (fp32)"] - 8.03e9 * 8 / 8 / 1024**3) < 0.1
    assert "memory plan per GPU" in full.table()
