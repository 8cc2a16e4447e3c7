"""PPO maths for RLEF, pure tensor code (RLEF paper §2.2 and App. A.1).

The policy acts per token, but the value and the advantage are per turn: every token of
a turn's response shares that turn's advantage. A response's log-probability is the
mean of its token log-probabilities (geometric mean of probabilities), so the KL
penalty does not favour short answers. Shapes: E episodes, T turns, N responses
(flattened valid turns), L response tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def response_logprob(token_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean log-prob over a response's tokens. [N, L], [N, L] -> [N]"""
    mask = mask.to(token_logp.dtype)
    return (token_logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def kl_shaped_rewards(rewards: torch.Tensor, logp_policy: torch.Tensor,
                      logp_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """R = r - beta * log(pi/rho) per turn. All [E, T] (or [N])."""
    return rewards - beta * (logp_policy - logp_ref)


def returns_advantages(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                       gamma: float = 1.0, lam: float = 1.0,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-turn returns and GAE advantages. [E, T] each; mask marks real turns (a prefix).

    With gamma = lam = 1 (the paper's default) the advantage is
    A_t = (sum of the rewards from t on) - V_t.
    """
    E, T = rewards.shape
    mask = mask.to(rewards.dtype)
    values = values * mask
    adv = torch.zeros_like(rewards)
    last = torch.zeros(E, dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(T)):
        next_v = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        adv[:, t] = last
    returns = (adv + values) * mask
    return returns, adv


def group_advantages(rewards: torch.Tensor, kind: str = "grpo", eps: float = 1e-6,
                     ) -> torch.Tensor:
    """Critic-free baselines over K samples of the same problem. [G, K] -> [G, K]"""
    if kind == "rloo":
        K = rewards.shape[1]
        others = (rewards.sum(1, keepdim=True) - rewards) / max(K - 1, 1)
        return rewards - others
    mean = rewards.mean(1, keepdim=True)
    std = rewards.std(1, keepdim=True, unbiased=False)
    return (rewards - mean) / (std + eps)


def to_turns(flat: torch.Tensor, idx: list[tuple[int, int]], episodes: int, turns: int
             ) -> torch.Tensor:
    """[N] values of the turns taken -> [E, T] (zeros where no turn was taken)."""
    out = flat.new_zeros(episodes, turns)
    if idx:
        e, t = torch.tensor(idx, device=flat.device).T
        out[e, t] = flat
    return out


def per_turn(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]], idx: list[tuple[int, int]],
             episodes: int, turns: int, rewards: torch.Tensor, values: torch.Tensor,
             *args: float) -> tuple[torch.Tensor, torch.Tensor]:
    """returns_advantages on flattened turns: [N] -> ([N], [N])."""
    mask = to_turns(torch.ones_like(rewards), idx, episodes, turns)
    ret, adv = fn(to_turns(rewards, idx, episodes, turns), to_turns(values, idx, episodes,
                                                                      turns), mask, *args)
    e, t = torch.tensor(idx, device=rewards.device).T.reshape(2, -1)
    return ret[e, t], adv[e, t]


def group_turn_advantages(outcome: torch.Tensor, kl: torch.Tensor, idx: list[tuple[int, int]],
                          episodes: int, group: int, kind: str, beta: float) -> torch.Tensor:
    """Critic-free per-turn advantages. [N] each -> [N]

    The group baseline normalises the *outcome* rewards only: normalising rewards that
    already hold the KL term would turn KL noise in an all-fail group into unit-size
    advantages. The KL penalty still to come in the episode is subtracted as it is."""
    T = max((t for _, t in idx), default=0) + 1
    totals = to_turns(outcome, idx, episodes, T).sum(1).view(-1, group)          # [G, K]
    base = group_advantages(totals, kind).reshape(-1)                            # [E]
    kl_to_go = to_turns(kl, idx, episodes, T).flip(1).cumsum(1).flip(1)          # [E, T]
    e, t = torch.tensor(idx, device=outcome.device).T.reshape(2, -1)
    return base[e] - beta * kl_to_go[e, t]


def policy_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, clip: float = 0.2,
                logp_behaviour: torch.Tensor | None = None) -> torch.Tensor:
    """Clipped PPO surrogate, averaged over response tokens.

    logp_*: [N, L] token log-probs; advantages: [N] (one per turn); mask: [N, L].
    When rollouts came from a stale behaviour policy, each token is weighted by
    min(pi_old / pi_behaviour, 1) (truncated importance sampling).
    """
    ratio = torch.exp(logp_new - logp_old)
    adv = advantages.unsqueeze(-1)
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    if logp_behaviour is not None:
        surrogate = surrogate * torch.exp(logp_old - logp_behaviour).clamp(max=1.0).detach()
    mask = mask.to(surrogate.dtype)
    return -(surrogate * mask).sum() / mask.sum().clamp(min=1)


def value_loss(v_new: torch.Tensor, v_old: torch.Tensor, returns: torch.Tensor,
               clip: float = 0.2) -> torch.Tensor:
    """Clipped value loss. [N] each."""
    clipped = v_old + (v_new - v_old).clamp(-clip, clip)
    return 0.5 * torch.maximum((v_new - returns) ** 2, (clipped - returns) ** 2).mean()


def approx_kl(logp_new: torch.Tensor, logp_old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(old || new), for logging and early stopping. [N, L] -> scalar"""
    log_ratio = (logp_new - logp_old) * mask
    k3 = torch.exp(log_ratio) - 1 - log_ratio
    return (k3 * mask).sum() / mask.sum().clamp(min=1)
