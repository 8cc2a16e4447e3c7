"""The RLEF train loop: multi-turn rollouts against the service, PPO on execution rewards.

Reads top to bottom: 0. set-up, then per step 1. sample problems, 2. roll out episodes,
3. per-turn log-probs, values and KL-shaped rewards, 4. advantages, 5. PPO epochs,
6. log / eval / checkpoint. The maths lives in trainer/ppo.py.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from service.client import ExecutionClient
from trainer import dist, ppo
from trainer.config import TrainConfig
from trainer.data import Problem, load_problems, synthetic_problems
from trainer.policy import (
    Policy,
    ValueModel,
    add_lora,
    load_lm,
    load_lora,
    load_tokenizer,
    pick_device,
    token_logprobs,
)
from trainer.rollout import Episode, run_episodes, turn_rewards

log = logging.getLogger(__name__)


def load_data(spec: str, seed: int, n_synthetic: int) -> list[Problem]:
    if spec == "synthetic":
        return synthetic_problems(n_synthetic, seed)
    return load_problems(spec)[0]


def flatten(episodes: list[Episode]) -> list[tuple[int, int]]:
    """(episode, turn) for every turn taken, in order."""
    return [(e, t) for e, ep in enumerate(episodes) for t in range(len(ep.turns))]


def lr_at(step: int, cfg: TrainConfig, base: float) -> float:
    return base * min(1.0, (step + 1) / max(1, cfg.warmup_steps))


class Trainer:
    def __init__(self, cfg: TrainConfig, client: Any | None = None,
                 resume_from: Path | None = None) -> None:
        # 0. set-up: policy pi, frozen reference rho (always the starting model), value
        #    model V, optimisers, data; a checkpoint replaces pi, V and the optimiser state
        self.rank, self.world = dist.setup()
        torch.manual_seed(cfg.seed)  # the same on every rank: the same initial weights
        self.rng = random.Random(cfg.seed + self.rank)  # but each rank its own problems
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.tok = load_tokenizer(cfg.model)
        self.model = self.load_policy(resume_from)
        # rho: the starting policy, frozen (with LoRA: the same network, adapters off)
        self.ref = (None if cfg.lora_r else
                    load_lm(cfg.model, self.device).eval().requires_grad_(False))
        self.value = ValueModel(load_lm(cfg.model, self.device))
        self.policy = Policy(self.model, self.tok, self.device, cfg.max_new_tokens,
                             cfg.temperature, cfg.top_p)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        self.vopt = torch.optim.AdamW(self.value.parameters(), lr=cfg.value_lr or cfg.lr,
                                      weight_decay=cfg.weight_decay)
        self.client = client or ExecutionClient(cfg.service_url)
        self.problems = load_data(cfg.data, cfg.seed, cfg.synthetic_problems)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.step = 0
        if resume_from is not None:
            self.resume(resume_from)
        # decoupled generation: a frozen copy of pi rolls out batch t+1 while pi trains on t
        self.behaviour = (copy.deepcopy(self.model).eval().requires_grad_(False)
                          if cfg.async_rollouts else None)
        self.background = ThreadPoolExecutor(1, thread_name_prefix="rollout")
        self.pending: Future[list[Episode]] | None = None

    def load_policy(self, resume_from: Path | None) -> Any:
        cfg = self.cfg
        if cfg.lora_r and resume_from is not None:
            model = load_lora(cfg.model, str(resume_from), self.device)
        elif cfg.lora_r:
            model = add_lora(load_lm(cfg.model, self.device), cfg.lora_r, cfg.lora_alpha)
        else:
            model = load_lm(str(resume_from or cfg.model), self.device)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        return model

    def ref_logprobs(self, prompts: list[list[int]],
                     responses: list[list[int]]) -> torch.Tensor:
        if self.ref is not None:
            return self.batched_logprobs(self.ref, prompts, responses)[0]
        with self.model.disable_adapter():
            return self.batched_logprobs(self.model, prompts, responses)[0]

    def sample(self) -> list[Problem]:
        cfg = self.cfg
        if cfg.advantage == "ppo":
            return self.rng.sample(self.problems, min(cfg.problems_per_step, len(self.problems)))
        groups = max(1, cfg.problems_per_step // cfg.group_size)
        picked = self.rng.sample(self.problems, min(groups, len(self.problems)))
        return [p for p in picked for _ in range(cfg.group_size)]

    def eval_policy(self) -> Policy:
        """The current weights, sampled as evaluation asks (low temperature by default)."""
        return Policy(self.model, self.tok, self.device, self.cfg.max_new_tokens,
                      self.cfg.eval_temperature, self.cfg.eval_top_p)

    def roll_out(self, policy: Policy) -> list[Episode]:
        return run_episodes(self.sample(), policy, self.client, self.cfg.max_turns,
                            self.cfg.invalid_penalty)

    def turn_ids(self, episodes: list[Episode]) -> tuple[list[list[int]], list[list[int]]]:
        """(prompt ids, response ids) of every turn taken, in flatten() order."""
        idx = flatten(episodes)
        prompts = [episodes[e].turns[t].generation.prompt_ids for e, t in idx]
        responses = [episodes[e].turns[t].generation.response_ids or [self.tok.eos_token_id]
                     for e, t in idx]
        return prompts, responses

    def next_batch(self) -> tuple[list[Episode], torch.Tensor | None]:
        """This step's episodes and, when a stale copy generated them, its token log-probs."""
        if self.behaviour is None:
            return self.roll_out(self.policy), None
        if self.pending is None:
            self.pending = self.background.submit(self.roll_out, self.behaviour_policy())
        episodes = self.pending.result()
        with torch.no_grad():  # before the copy takes the new weights
            logp_beh = self.batched_logprobs(self.behaviour, *self.turn_ids(episodes))[0]  # [N, L]
        self.behaviour.load_state_dict(self.model.state_dict())
        self.pending = self.background.submit(self.roll_out, self.behaviour_policy())
        return episodes, logp_beh

    def behaviour_policy(self) -> Policy:
        cfg = self.cfg
        return Policy(self.behaviour, self.tok, self.device, cfg.max_new_tokens,
                      cfg.temperature, cfg.top_p)

    def close(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
        self.background.shutdown(wait=True)

    def train_step(self) -> dict[str, float]:
        cfg, pad = self.cfg, self.tok.pad_token_id
        # 1-2. problems rolled out as multi-turn episodes against the service (with
        #      async_rollouts: by last step's weights, in the background, during step 5)
        t0 = time.perf_counter()
        episodes, logp_beh = self.next_batch()                                     # [N, L]
        t_rollout = time.perf_counter() - t0
        idx = flatten(episodes)
        prompts, responses = self.turn_ids(episodes)

        # 3. old and reference log-probs per token, per-turn values, KL-shaped rewards
        with torch.no_grad():
            logp_old, mask = self.batched_logprobs(self.model, prompts, responses)  # [N, L]
            logp_ref = self.ref_logprobs(prompts, responses)                        # [N, L]
            v_old = torch.cat([self.value(prompts[i:i + cfg.minibatch], pad)
                               for i in range(0, len(prompts), cfg.minibatch)])      # [N]
        seq_old = ppo.response_logprob(logp_old, mask)                                # [N]
        seq_ref = ppo.response_logprob(logp_ref, mask)                                # [N]
        raw = torch.tensor([turn_rewards(len(ep.turns), ep.solved, ep.invalid,
                                         cfg.invalid_penalty)[t] for ep in episodes
                            for t in range(len(ep.turns))], device=self.device)      # [N]
        shaped = ppo.kl_shaped_rewards(raw, seq_old, seq_ref, cfg.beta)              # [N]

        # 4. advantages: per turn from the value model, or from the group baseline
        returns, adv = self.advantages(episodes, idx, shaped, v_old)                 # [N], [N]

        # 5. PPO epochs over minibatches of turns
        stats = self.ppo_epochs(prompts, responses, logp_old, mask, adv, v_old, returns,
                                logp_beh)
        self.step += 1
        solved = [ep.solved for ep in episodes]
        return {"step": self.step, "reward": sum(ep.reward for ep in episodes) / len(episodes),
                "solve_rate": sum(solved) / len(solved),
                "turn1_solve_rate": sum(bool(ep.turns[0].result and ep.turns[0].result.verdict
                                             == "accepted") for ep in episodes) / len(episodes),
                "turns": len(idx) / len(episodes),
                "kl": float((seq_old - seq_ref).mean()), "rollout_s": t_rollout, **stats}

    def batched_logprobs(self, model: torch.nn.Module, prompts: list[list[int]],
                         responses: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        mb, width = self.cfg.minibatch, max(len(r) for r in responses)
        logps, masks = [], []
        for i in range(0, len(prompts), mb):
            lp, m = token_logprobs(model, prompts[i:i + mb], responses[i:i + mb],
                                   self.tok.pad_token_id, self.device)
            logps.append(torch.nn.functional.pad(lp, (0, width - lp.shape[1])))
            masks.append(torch.nn.functional.pad(m, (0, width - m.shape[1])))
        return torch.cat(logps), torch.cat(masks)

    def advantages(self, episodes: list[Episode], idx: list[tuple[int, int]],
                   shaped: torch.Tensor, v_old: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        E, T = len(episodes), cfg.max_turns
        rewards = torch.zeros(E, T, device=self.device)
        values = torch.zeros(E, T, device=self.device)
        tmask = torch.zeros(E, T, device=self.device)
        for n, (e, t) in enumerate(idx):
            rewards[e, t], values[e, t], tmask[e, t] = shaped[n], v_old[n], 1.0
        returns, adv = ppo.returns_advantages(rewards, values, tmask, cfg.gamma, cfg.lam)
        if cfg.advantage != "ppo":  # critic-free: one baseline per group of samples
            totals = (rewards * tmask).sum(1).view(-1, cfg.group_size)             # [G, K]
            group = ppo.group_advantages(totals, cfg.advantage).view(E, 1).expand(E, T)
            adv = group
        flat = torch.stack([adv[e, t] for e, t in idx])
        ret = torch.stack([returns[e, t] for e, t in idx])
        return ret, flat

    def ppo_epochs(self, prompts: list[list[int]], responses: list[list[int]],
                   logp_old: torch.Tensor, mask: torch.Tensor, adv: torch.Tensor,
                   v_old: torch.Tensor, returns: torch.Tensor,
                   logp_beh: torch.Tensor | None = None) -> dict[str, float]:
        cfg, pad = self.cfg, self.tok.pad_token_id
        for group in (self.opt.param_groups, self.vopt.param_groups):
            for g in group:
                g["lr"] = lr_at(self.step, cfg, cfg.lr if group is self.opt.param_groups
                                else (cfg.value_lr or cfg.lr))
        self.model.train()
        p_losses, v_losses, kls = [], [], []
        # ranks may hold different numbers of turns: all take the same number of steps
        rounds = dist.agreed_max(math.ceil(len(prompts) / cfg.minibatch), self.device)
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(len(prompts)).tolist()
            for r in range(rounds):
                b = order[r * cfg.minibatch:(r + 1) * cfg.minibatch]
                self.opt.zero_grad()
                self.vopt.zero_grad()
                tokens = sum(len(responses[i]) for i in b)
                for part in self.micro(b):  # gradient accumulation over micro-batches
                    width = max(len(responses[i]) for i in part)
                    lp, m = token_logprobs(self.model, [prompts[i] for i in part],
                                           [responses[i] for i in part], pad, self.device)
                    old = logp_old[part][:, :width]
                    share = sum(len(responses[i]) for i in part) / tokens  # token-weighted
                    beh = None if logp_beh is None else logp_beh[part][:, :width]
                    p_loss = ppo.policy_loss(lp, old, adv[part], m, cfg.clip, beh) * share
                    p_loss.backward()
                    p_losses.append(float(p_loss.detach()) / share)
                    kls.append(float(ppo.approx_kl(lp.detach(), old, m)))
                self.optimise(self.model, self.opt)
                if cfg.advantage == "ppo":
                    for part in self.micro(b):
                        v = self.value([prompts[i] for i in part], pad)
                        v_loss = ppo.value_loss(v, v_old[part], returns[part], cfg.value_clip)
                        (v_loss * len(part) / len(b)).backward()
                        v_losses.append(float(v_loss.detach()))
                    self.optimise(self.value, self.vopt)
        return {"policy_loss": sum(p_losses) / max(1, len(p_losses)),
                "value_loss": sum(v_losses) / max(1, len(v_losses)),
                "approx_kl": sum(kls) / max(1, len(kls))}

    def micro(self, batch: list[int]) -> list[list[int]]:
        size = self.cfg.micro_batch or max(1, len(batch))
        return [batch[i:i + size] for i in range(0, len(batch), size)]

    def optimise(self, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        dist.average_grads(model.parameters())  # no-op on one process
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.max_grad_norm)
        opt.step()

    def save(self, tag: str) -> Path:
        """A checkpoint: the policy as a HF model dir, plus V and the optimiser state."""
        path = self.out / tag
        tmp = self.out / f".{tag}.tmp"
        # checkpoints keep LoRA adapters (to resume); the final model is merged, so that
        # `rlef eval` and any HF tool load it as a plain model
        model = self.model.merge_and_unload() if self.cfg.lora_r and tag == "final" \
            else self.model
        model.save_pretrained(tmp)
        self.tok.save_pretrained(tmp)
        torch.save({"step": self.step, "value": self.value.state_dict(),
                    "opt": self.opt.state_dict(), "vopt": self.vopt.state_dict(),
                    "rng": self.rng.getstate(), "torch_rng": torch.get_rng_state()},
                   tmp / "trainer_state.pt")
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)  # a crash mid-save leaves the previous checkpoint intact
        return path

    def resume(self, path: Path) -> None:
        state = torch.load(path / "trainer_state.pt", map_location=self.device,
                           weights_only=False)
        self.step = state["step"]
        self.value.load_state_dict(state["value"])
        self.opt.load_state_dict(state["opt"])
        self.vopt.load_state_dict(state["vopt"])
        self.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
