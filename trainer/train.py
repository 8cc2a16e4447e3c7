"""The RLEF train step: multi-turn rollouts against the service, PPO on execution rewards.

`Trainer.train_step` reads top to bottom: the learning rate, 1. problems and rollouts
(in the background with async_rollouts), 2. per-token log-probs of the policy and the
reference, 3. advantages (PPO: KL-shaped per-turn rewards and GAE on the value model;
GRPO/RLOO: a group baseline on the outcome rewards, the KL penalty added unnormalised),
4. PPO epochs, 5. metrics. Set-up and checkpoints live in trainer/setup.py; the maths
in trainer/ppo.py.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from trainer import dist, ppo
from trainer.config import TrainConfig
from trainer.policy import token_logprobs
from trainer.rollout import Episode, turn_rewards
from trainer.setup import Setup


def flatten(episodes: list[Episode]) -> list[tuple[int, int]]:
    """(episode, turn) for every turn taken, in order."""
    return [(e, t) for e, ep in enumerate(episodes) for t in range(len(ep.turns))]


def kept(episodes: list[Episode], group: int) -> list[Episode]:
    """Episodes without a sandbox failure; in group modes a failure drops its whole group
    (a baseline over fewer samples would be a different estimator)."""
    groups = [episodes[i:i + group] for i in range(0, len(episodes), group)]
    return [e for g in groups if not any(x.dropped for x in g) for e in g]


class Trainer(Setup):
    def __init__(self, cfg: TrainConfig, client: Any | None = None,
                 resume_from: Path | None = None) -> None:
        super().__init__(cfg, client, resume_from)

    def train_step(self) -> dict[str, float]:
        cfg, t_start = self.cfg, time.perf_counter()
        # learning rate: linear warm-up to cfg.lr (the paper's schedule), then constant
        scale = min(1.0, (self.step + 1) / max(1, cfg.warmup_steps))
        for opt, base in ((self.opt, cfg.lr), (self.vopt, cfg.value_lr or cfg.lr)):
            for g in opt.param_groups if opt is not None else []:
                g["lr"] = base * scale

        # 1. problems rolled out as multi-turn episodes against the service; with
        #    async_rollouts they come from last step's weights, generated during step 4
        truncated = self.policy.truncated
        if cfg.async_rollouts:
            (episodes, stats), logp_beh = self.next_async_batch()
        else:
            (episodes, stats), logp_beh = self.roll_out(self.policy, self.step), None
        all_episodes = episodes
        episodes = kept(episodes, 1 if cfg.advantage == "ppo" else cfg.group_size)
        if logp_beh is not None:  # rows of the turns that were kept
            keep = [id(e) for e in episodes]
            logp_beh = logp_beh[[n for n, (e, _) in enumerate(flatten(all_episodes))
                                 if id(all_episodes[e]) in keep]]
        idx = flatten(episodes)
        prompts, responses = self.turn_ids(episodes)

        # 2. per-token log-probs of the rollout policy and the reference; per-turn KL
        with torch.no_grad(), self.amp(), dist.gathered([self.model, self.ref, self.value]):
            logp_old, mask = self.batched_logprobs(self.model, prompts, responses)  # [N, L]
            logp_ref = self.ref_logprobs(prompts, responses)                        # [N, L]
        kl = ppo.response_logprob(logp_old, mask) - ppo.response_logprob(logp_ref, mask)  # [N]
        outcome = torch.tensor([r for ep in episodes for r in turn_rewards(
            len(ep.turns), ep.solved, ep.invalid, cfg.invalid_penalty)], device=self.device)

        # 3. advantages, one per turn
        if cfg.advantage == "ppo":  # a critic: per-turn values, KL-shaped rewards, GAE
            assert self.value is not None
            with torch.no_grad(), self.amp(), dist.gathered([self.value]):
                v_old = torch.cat([self.value(prompts[i:i + cfg.minibatch], self.pad_id)
                                   for i in range(0, len(prompts), cfg.minibatch)]
                                  or [torch.zeros(0, device=self.device)])          # [N]
            shaped = outcome - cfg.beta * kl                                        # [N]
            returns, adv = ppo.per_turn(ppo.returns_advantages, idx, len(episodes),
                                        cfg.max_turns, shaped, v_old, cfg.gamma, cfg.lam)
        else:  # critic-free: a baseline over each problem's group_size samples
            v_old = returns = torch.zeros_like(outcome)
            adv = ppo.group_turn_advantages(outcome, kl, idx, len(episodes), cfg.group_size,
                                            cfg.advantage, cfg.beta)

        # 4. PPO epochs over minibatches of turns (importance-corrected when async)
        losses = self.ppo_epochs(prompts, responses, logp_old, mask, adv, v_old, returns,
                                 logp_beh)

        # 5. metrics
        self.step += 1
        step_s = time.perf_counter() - t_start
        n = max(1, len(episodes))
        return {"step": self.step, "lr": cfg.lr * scale,
                "reward": sum(ep.reward for ep in episodes) / n,
                "solve_rate": sum(ep.solved for ep in episodes) / n,
                "turn1_solve_rate": sum(bool(ep.turns[0].result and ep.turns[0].result.verdict
                                             == "accepted") for ep in episodes) / n,
                "turns": len(idx) / n, "kl": float(kl.mean()) if len(kl) else 0.0,
                "response_tokens": sum(map(len, responses)),
                "dropped_episodes": len(all_episodes) - len(episodes),
                "sandbox_retries": stats.retried,
                "truncated_prompts": self.policy.truncated - truncated,
                "generate_s": stats.generate_s, "exec_wait_share": stats.exec_wait_s / step_s,
                "step_s": step_s, **losses}

    def ppo_epochs(self, prompts: list[list[int]], responses: list[list[int]],
                   logp_old: torch.Tensor, mask: torch.Tensor, adv: torch.Tensor,
                   v_old: torch.Tensor, returns: torch.Tensor,
                   logp_beh: torch.Tensor | None = None) -> dict[str, float]:
        cfg = self.cfg
        self.model.train()
        p_losses, v_losses, kls = [], [], []
        # ranks may hold different numbers of turns: all take the same number of steps
        rounds = dist.agreed_max(math.ceil(len(prompts) / cfg.minibatch), self.device)
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(len(prompts)).tolist()
            for r in range(rounds):
                b = order[r * cfg.minibatch:(r + 1) * cfg.minibatch]
                self.opt.zero_grad()
                tokens = max(1, sum(len(responses[i]) for i in b))
                for part in self.micro(b):  # gradient accumulation over micro-batches
                    if not part:  # fsdp: this rank has fewer; a zero-weight pass
                        self.idle_pass(self.model)
                        continue
                    width = max(len(responses[i]) for i in part)
                    with self.amp():
                        lp, m = token_logprobs(self.model, [prompts[i] for i in part],
                                               [responses[i] for i in part], self.pad_id,
                                               self.device, cfg.logprob_chunk)
                    old = logp_old[part][:, :width]
                    share = sum(len(responses[i]) for i in part) / tokens  # token-weighted
                    beh = None if logp_beh is None else logp_beh[part][:, :width]
                    p_loss = ppo.policy_loss(lp, old, adv[part], m, cfg.clip, beh) * share
                    p_loss.backward()
                    p_losses.append(float(p_loss.detach()) / share)
                    kls.append(float(ppo.approx_kl(lp.detach(), old, m)))
                self.optimise(self.policy_params, self.opt)
                if self.value is not None and self.vopt is not None:
                    self.vopt.zero_grad()
                    for part in self.micro(b):
                        if not part:
                            self.idle_pass(self.value)
                            continue
                        with self.amp():
                            v = self.value([prompts[i] for i in part], self.pad_id)
                        v_loss = ppo.value_loss(v, v_old[part], returns[part], cfg.value_clip)
                        (v_loss * len(part) / max(1, len(b))).backward()
                        v_losses.append(float(v_loss.detach()))
                    self.optimise(self.value_params, self.vopt)
        return {"policy_loss": sum(p_losses) / max(1, len(p_losses)),
                "value_loss": sum(v_losses) / max(1, len(v_losses)),
                "approx_kl": sum(kls) / max(1, len(kls))}

    def micro(self, batch: list[int]) -> list[list[int]]:
        """Micro-batches; under fsdp every rank runs as many passes (each pass gathers
        shards), padded with empty ones."""
        size = self.cfg.micro_batch or max(1, len(batch))
        parts = [batch[i:i + size] for i in range(0, len(batch), size)]
        if self.sharded:
            parts += [[]] * (dist.agreed_max(len(parts), self.device) - len(parts))
        return parts

    def idle_pass(self, model: torch.nn.Module) -> None:
        """A forward and backward that changes nothing, matching other ranks' collectives."""
        one = [[self.pad_id]]
        with self.amp():
            out = (model(one, self.pad_id) if model is self.value else
                   token_logprobs(model, one, one, self.pad_id, self.device)[0])
        (out.sum() * 0).backward()

    def optimise(self, params: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
        dist.average_grads(params)  # no-op on one process
        torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm)
        opt.step()
