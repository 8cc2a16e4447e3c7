"""The RLEF train loop: multi-turn rollouts against the service, PPO on execution rewards.

Reads top to bottom: 0. set-up, then per step 1. sample problems, 2. roll out episodes,
3. per-turn log-probs, values and KL-shaped rewards, 4. advantages, 5. PPO epochs,
6. log / eval / checkpoint. The maths lives in trainer/ppo.py.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from service.client import ExecutionClient
from trainer import ppo
from trainer.config import TrainConfig
from trainer.data import Problem, load_problems, synthetic_problems
from trainer.policy import Policy, ValueModel, load_lm, load_tokenizer, pick_device, token_logprobs
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
        torch.manual_seed(cfg.seed)
        self.rng = random.Random(cfg.seed)
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.tok = load_tokenizer(cfg.model)
        self.ref = load_lm(cfg.model, self.device).eval().requires_grad_(False)
        self.model = load_lm(str(resume_from or cfg.model), self.device)
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

    def train_step(self) -> dict[str, float]:
        cfg, pad = self.cfg, self.tok.pad_token_id
        # 1. sample problems; 2. roll out multi-turn episodes against the service
        problems = self.sample()
        t0 = time.perf_counter()
        episodes = run_episodes(problems, self.policy, self.client, cfg.max_turns,
                                cfg.invalid_penalty)
        t_rollout = time.perf_counter() - t0
        idx = flatten(episodes)
        prompts = [episodes[e].turns[t].generation.prompt_ids for e, t in idx]
        responses = [episodes[e].turns[t].generation.response_ids or [self.tok.eos_token_id]
                     for e, t in idx]

        # 3. old and reference log-probs per token, per-turn values, KL-shaped rewards
        with torch.no_grad():
            logp_old, mask = self.batched_logprobs(self.model, prompts, responses)  # [N, L]
            logp_ref, _ = self.batched_logprobs(self.ref, prompts, responses)       # [N, L]
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
        stats = self.ppo_epochs(prompts, responses, logp_old, mask, adv, v_old, returns)
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
                   v_old: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        cfg, pad = self.cfg, self.tok.pad_token_id
        for group in (self.opt.param_groups, self.vopt.param_groups):
            for g in group:
                g["lr"] = lr_at(self.step, cfg, cfg.lr if group is self.opt.param_groups
                                else (cfg.value_lr or cfg.lr))
        self.model.train()
        p_losses, v_losses, kls = [], [], []
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(len(prompts)).tolist()
            for s in range(0, len(order), cfg.minibatch):
                b = order[s:s + cfg.minibatch]
                width = max(len(responses[i]) for i in b)
                lp, m = token_logprobs(self.model, [prompts[i] for i in b],
                                       [responses[i] for i in b], pad, self.device)
                old = logp_old[b][:, :width]
                p_loss = ppo.policy_loss(lp, old, adv[b], m, cfg.clip)
                self.opt.zero_grad()
                p_loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.opt.step()
                if cfg.advantage == "ppo":
                    v = self.value([prompts[i] for i in b], pad)
                    v_loss = ppo.value_loss(v, v_old[b], returns[b], cfg.value_clip)
                    self.vopt.zero_grad()
                    v_loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.value.parameters(), cfg.max_grad_norm)
                    self.vopt.step()
                    v_losses.append(float(v_loss.detach()))
                p_losses.append(float(p_loss.detach()))
                kls.append(float(ppo.approx_kl(lp.detach(), old, m)))
        return {"policy_loss": sum(p_losses) / len(p_losses),
                "value_loss": sum(v_losses) / max(1, len(v_losses)),
                "approx_kl": sum(kls) / len(kls)}

    def save(self, tag: str) -> Path:
        """A checkpoint: the policy as a HF model dir, plus V and the optimiser state."""
        path = self.out / tag
        tmp = self.out / f".{tag}.tmp"
        self.model.save_pretrained(tmp)
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


def log_jsonl(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def held_out(cfg: TrainConfig) -> list[Problem]:
    """Evaluation problems: --eval-data, or fresh synthetic ones (other secrets)."""
    if cfg.eval_data:
        return load_problems(cfg.eval_data, limit=cfg.eval_problems)[0]
    if cfg.data == "synthetic":
        return synthetic_problems(cfg.eval_problems, cfg.seed + 10_000)
    return []


def checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def trim_metrics(path: Path, step: int) -> None:
    """After a resume, rows logged past the checkpoint would be logged again: drop them."""
    if path.exists():
        rows = [r for r in path.read_text().splitlines() if json.loads(r)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


def fit(cfg: TrainConfig, client: Any | None = None, resume: bool = False) -> Path:
    """Train for cfg.steps (continuing from the last checkpoint with resume=True)."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from trainer.eval import evaluate
    from trainer.plot import plot_run

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = checkpoints(out)[-1] if resume and checkpoints(out) else None
    trainer = Trainer(cfg, client, resume_from=last)
    (out / "config.json").write_text(cfg.model_dump_json(indent=2))
    metrics = out / "metrics.jsonl"
    trim_metrics(metrics, trainer.step) if last else metrics.unlink(missing_ok=True)
    writer = SummaryWriter(str(out / "tb"))
    eval_set = held_out(cfg)
    bar = tqdm(total=cfg.steps, initial=trainer.step, desc="rlef train", unit="step")
    while trainer.step < cfg.steps:
        row: dict[str, Any] = trainer.train_step()
        if cfg.eval_every and eval_set and trainer.step % cfg.eval_every == 0:
            report = evaluate(eval_set, trainer.eval_policy(), trainer.client, cfg.max_turns, 1)
            row |= {"eval_turn1": report.single_turn_solve_rate,
                    "eval_solve_rate": report.multi_turn_solve_rate}
        log_jsonl(metrics, row)
        for key, value in row.items():
            writer.add_scalar(key, value, trainer.step)
        bar.set_postfix(reward=f"{row['reward']:.2f}", solve=f"{row['solve_rate']:.2f}",
                        kl=f"{row['kl']:.3f}")
        bar.update()
        if cfg.checkpoint_every and trainer.step % cfg.checkpoint_every == 0:
            trainer.save(f"checkpoint-{trainer.step}")
            for old in checkpoints(out)[:-cfg.keep_checkpoints]:
                shutil.rmtree(old)
    bar.close()
    writer.close()
    final = trainer.save("final")
    plot_run(out)
    return final
