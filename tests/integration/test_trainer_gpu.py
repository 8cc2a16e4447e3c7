"""The CUDA path: one RLEF step in bf16 (skipped without a GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from service.client import ExecutionClient
from trainer.config import TrainConfig
from trainer.demo import local_service
from trainer.tiny import build_warmed_tiny_model
from trainer.train import Trainer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_one_ppo_step_in_bf16_on_cuda(tmp_path: Path) -> None:
    model = build_warmed_tiny_model(tmp_path / "tiny", examples=500)
    with local_service(tmp_path / "service.log") as url:
        cfg = TrainConfig(model=str(model), data="synthetic", out_dir=str(tmp_path / "run"),
                          problems_per_step=16, max_new_tokens=16, minibatch=16, device="cuda")
        trainer = Trainer(cfg, ExecutionClient(url))
        assert next(trainer.model.parameters()).dtype == torch.bfloat16
        row = trainer.train_step()
    assert row["step"] == 1 and torch.isfinite(torch.tensor(row["policy_loss"]))
