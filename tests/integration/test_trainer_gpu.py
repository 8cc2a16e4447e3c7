"""The CUDA path: one RLEF step in bf16 (skipped without a GPU): throughput, peak memory,
and the dry-run plan beside the measurement."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from service.client import ExecutionClient, local_service
from trainer.config import TrainConfig
from trainer.memory import plan
from trainer.tiny import build_warmed_tiny_model
from trainer.train import Trainer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_one_ppo_step_in_bf16_on_cuda(tmp_path: Path) -> None:
    model = build_warmed_tiny_model(tmp_path / "tiny", examples=500)
    with local_service(tmp_path / "service.log") as url:
        cfg = TrainConfig(model=str(model), data="synthetic", out_dir=str(tmp_path / "run"),
                          problems_per_step=16, max_new_tokens=16, minibatch=16, device="cuda",
                          precision="bf16")
        trainer = Trainer(cfg, ExecutionClient(url))
        assert {p.dtype for p in trainer.policy_params} == {torch.float32}  # master weights
        torch.cuda.reset_peak_memory_stats()
        row = trainer.train_step()
    assert row["step"] == 1 and torch.isfinite(torch.tensor(row["policy_loss"]))
    peak = torch.cuda.max_memory_allocated() / 1024**3
    planned = plan(cfg, trainer.model.config).total
    print(f"bf16 PPO step: {row['response_tokens'] / row['step_s']:.0f} response tokens/s, "
          f"peak {peak:.3f} GiB, planned {planned:.3f} GiB; {trainer.memory}")
