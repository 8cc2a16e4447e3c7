"""Problem sampling: each rank its own problems, and a resumed run draws what it would have."""

from pathlib import Path

from trainer.config import TrainConfig
from trainer.tiny import build_tiny_model
from trainer.train import Trainer


def test_each_rank_draws_its_own_problems_also_after_a_resume(tmp_path: Path) -> None:
    model = str(build_tiny_model(tmp_path / "m", n_layer=1, n_embd=16, n_head=2))
    cfg = TrainConfig(model=model, data="synthetic", out_dir=str(tmp_path / "r"), device="cpu",
                      synthetic_problems=64, problems_per_step=8, advantage="grpo")
    trainer = Trainer(cfg, client=object())
    rank0 = [p.id for p in trainer.sample(7)]
    trainer.rank = 1
    rank1 = [p.id for p in trainer.sample(7)]
    assert rank0 != rank1
    resumed = Trainer(cfg, client=object())  # a fresh process at step 7 (rank 0)
    assert [p.id for p in resumed.sample(7)] == rank0
    assert [p.id for p in resumed.sample(8)] != rank0
    assert len(set(rank0)) == 2 and len(rank0) == 8  # groups of group_size samples
