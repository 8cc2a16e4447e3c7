"""Gradient accumulation over micro-batches takes the same step as the whole minibatch."""

import torch

from trainer.config import TrainConfig
from trainer.tiny import build_tiny_model
from trainer.train import Trainer


def step_with(micro_batch: int, model: str, out: str) -> list[torch.Tensor]:
    cfg = TrainConfig(model=model, data="synthetic", out_dir=out, minibatch=4, ppo_epochs=1,
                      micro_batch=micro_batch, lr=1e-2, warmup_steps=1, device="cpu",
                      synthetic_problems=4)
    trainer = Trainer(cfg, client=object())
    # plain SGD: Adam's normalisation would blow float noise in ~0 gradients up to +-lr
    trainer.opt = torch.optim.SGD(trainer.policy_params, lr=1e-2)
    prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14]]
    responses = [[20, 21], [22], [23, 24, 25], [26, 27]]
    with torch.no_grad():
        logp_old, mask = trainer.batched_logprobs(trainer.model, prompts, responses)
    adv = torch.tensor([1.0, -0.5, 0.25, -1.0])
    v_old, returns = torch.zeros(4), torch.tensor([1.0, -1.0, 1.0, -1.0])
    trainer.ppo_epochs(prompts, responses, logp_old + 0.1 * mask, mask, adv, v_old, returns)
    return [p.detach().clone() for p in trainer.model.parameters()]


def test_micro_batches_match_the_full_minibatch(tmp_path):
    model = str(build_tiny_model(tmp_path / "m", n_layer=1, n_embd=32, n_head=2))
    whole = step_with(0, model, str(tmp_path / "a"))
    parts = step_with(1, model, str(tmp_path / "b"))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(whole, parts, strict=True))
    start = [p.detach() for p in Trainer(TrainConfig(model=model, data="synthetic",
                                                     out_dir=str(tmp_path / "c"),
                                                     synthetic_problems=4, device="cpu"),
                                         client=object()).model.parameters()]
    assert any(not torch.allclose(a, b) for a, b in zip(whole, start, strict=True))
