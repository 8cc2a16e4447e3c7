"""trainer/ppo.py against values computed by hand."""

import math

import pytest
import torch

from trainer import ppo


def close(a: torch.Tensor, b: list) -> None:
    assert torch.allclose(a, torch.tensor(b, dtype=a.dtype), atol=1e-5), (a, b)


def test_response_logprob_is_the_mean_over_real_tokens():
    logp = torch.tensor([[-1.0, -3.0, -100.0], [-2.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    close(ppo.response_logprob(logp, mask), [-2.0, -2.0])


def test_kl_shaped_rewards():
    r = torch.tensor([0.0, 1.0])
    close(ppo.kl_shaped_rewards(r, torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0]), 0.1),
          [-0.05, 1.1])


def test_returns_and_advantages_gamma_one():
    # two episodes: three turns (-0.2, 0, +1) and one turn (-1)
    rewards = torch.tensor([[-0.2, 0.0, 1.0], [-1.0, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.9], [0.3, 7.0, 7.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    returns, adv = ppo.returns_advantages(rewards, values, mask)
    close(returns, [[0.8, 1.0, 1.0], [-1.0, 0.0, 0.0]])
    close(adv, [[0.3, 0.8, 0.1], [-1.3, 0.0, 0.0]])


def test_gae_lambda_and_gamma():
    rewards = torch.tensor([[0.0, 1.0]])
    values = torch.tensor([[0.5, 0.4]])
    _, adv = ppo.returns_advantages(rewards, values, torch.ones(1, 2), gamma=0.9, lam=0.5)
    d1 = 1.0 - 0.4                     # last turn: r - V
    d0 = 0.0 + 0.9 * 0.4 - 0.5         # r + gamma V' - V
    close(adv, [[d0 + 0.9 * 0.5 * d1, d1]])


def test_group_advantages():
    r = torch.tensor([[1.0, -1.0, -1.0, -1.0]])
    close(ppo.group_advantages(r, "rloo"), [[2.0, -2 / 3, -2 / 3, -2 / 3]])
    std = math.sqrt(0.75)  # population std of {1,-1,-1,-1}
    close(ppo.group_advantages(r, "grpo"), [[1.5 / std, -0.5 / std, -0.5 / std, -0.5 / std]])
    assert torch.all(ppo.group_advantages(torch.ones(1, 4), "grpo") == 0)


def test_policy_loss_clips_in_the_pessimistic_direction():
    old = torch.zeros(2, 1)
    new = torch.log(torch.tensor([[1.5], [0.5]]))  # ratios 1.5 and 0.5
    mask = torch.ones(2, 1)
    # A>0: min(1.5, 1.2) = 1.2; A<0: min(0.5*-1, 0.8*-1) = -0.8
    loss = ppo.policy_loss(new, old, torch.tensor([1.0, -1.0]), mask, clip=0.2)
    assert loss.item() == pytest.approx(-(1.2 - 0.8) / 2)


def test_policy_loss_masks_padding_and_gradient_flows():
    new = torch.zeros(1, 3, requires_grad=True)
    loss = ppo.policy_loss(new, torch.zeros(1, 3), torch.tensor([2.0]),
                           torch.tensor([[1.0, 1.0, 0.0]]))
    assert loss.item() == pytest.approx(-2.0)
    loss.backward()
    close(new.grad, [[-1.0, -1.0, 0.0]])


def test_truncated_importance_weight():
    new = old = torch.zeros(2, 1)
    behaviour = torch.log(torch.tensor([[0.5], [2.0]]))  # pi_old/pi_b = 2 (capped at 1) and 0.5
    loss = ppo.policy_loss(new, old, torch.tensor([1.0, 1.0]), torch.ones(2, 1),
                           logp_behaviour=behaviour)
    assert loss.item() == pytest.approx(-(1.0 + 0.5) / 2)


def test_value_loss_clipped():
    # v_new moved 1.0 from v_old = 0; clipped to 0.2; returns 1 -> max(0, 0.64) / 2
    loss = ppo.value_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0]))
    assert loss.item() == pytest.approx(0.5 * 0.64)


def test_approx_kl_zero_when_equal_and_k3_otherwise():
    lp = torch.tensor([[-1.0, -2.0]])
    assert ppo.approx_kl(lp, lp, torch.ones(1, 2)).item() == 0
    kl = ppo.approx_kl(torch.tensor([[math.log(0.5)]]), torch.zeros(1, 1), torch.ones(1, 1))
    assert kl.item() == pytest.approx(0.5 - 1 - math.log(0.5))


def test_group_baseline_normalises_outcomes_not_kl_noise():
    # one all-fail group of 4 single-turn episodes whose KL differs by noise
    idx = [(0, 0), (1, 0), (2, 0), (3, 0)]
    outcome = torch.full((4,), -1.0)
    kl = torch.tensor([0.01, -0.02, 0.03, 0.0])
    adv = ppo.group_turn_advantages(outcome, kl, idx, 4, 4, "grpo", beta=0.05)
    assert adv.abs().max() < 0.01  # today's shaped rewards made these +-1 after normalising
    solved = ppo.group_turn_advantages(torch.tensor([1.0, -1.0, -1.0, -1.0]), torch.zeros(4),
                                       idx, 4, 4, "rloo", 0.05)
    close(solved, [2.0, -2 / 3, -2 / 3, -2 / 3])


def test_group_kl_penalty_counts_the_kl_still_to_come():
    # one episode of two turns, in a group of 2 with a one-turn episode
    idx = [(0, 0), (0, 1), (1, 0)]
    adv = ppo.group_turn_advantages(torch.tensor([0.0, 1.0, -1.0]), torch.tensor([0.2, 0.4, 0.0]),
                                    idx, 2, 2, "rloo", beta=0.5)
    close(adv, [2.0 - 0.5 * 0.6, 2.0 - 0.5 * 0.4, -2.0])
