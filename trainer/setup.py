"""What a train step stands on: the networks, optimisers, problem sampling, the background
rollout of async mode, and checkpoints (save / resume).

Networks (trainer/models.py): the policy pi; the frozen reference rho (the starting
model; under LoRA the same network with its adapters off); the value model V (PPO only;
under LoRA a second adapter on the same frozen base). Trainable weights are fp32.
"""

from __future__ import annotations

import copy
import logging
import random
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from service.client import ExecutionClient
from trainer import dist
from trainer.config import TrainConfig
from trainer.data import Problem, load_problems, synthetic_problems
from trainer.models import (
    ValueModel,
    add_lora,
    autocast,
    compute_dtype,
    frozen,
    load_lm,
    load_lora,
    load_tokenizer,
    memory_line,
    pick_device,
)
from trainer.policy import Policy, token_logprobs
from trainer.rollout import Episode, RolloutStats, run_episodes

log = logging.getLogger(__name__)


def load_data(spec: str, seed: int, n_synthetic: int) -> list[Problem]:
    if spec == "synthetic":
        return synthetic_problems(n_synthetic, seed)
    if spec == "repair":
        from trainer.repair import repair_problems

        return repair_problems(n_synthetic, seed)
    return load_problems(spec)[0]


class Setup:
    def __init__(self, cfg: TrainConfig, client: Any | None = None,
                 resume_from: Path | None = None) -> None:
        self.rank, self.world = dist.setup()
        torch.manual_seed(cfg.seed)  # the same on every rank: the same initial weights
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.dtype = compute_dtype(cfg.precision, self.device)
        self.tok = load_tokenizer(cfg.model)
        self.pad_id = self.tok.pad_token_id
        self.model = self.load_policy(resume_from)
        self.ref = None if cfg.lora_r else frozen(load_lm(cfg.model, self.device, self.dtype))
        self.value: ValueModel | None = None
        if cfg.advantage == "ppo":
            self.value = (ValueModel.on_adapter(self.model, cfg.lora_r, cfg.lora_alpha)
                          if cfg.lora_r else ValueModel(load_lm(cfg.model, self.device)))
        self.sharded = cfg.fsdp and self.world > 1
        if self.sharded:
            self.shard()
        self.value_params = self.value.trainable() if self.value is not None else []
        own = {id(p) for p in self.value_params}
        self.policy_params = [p for p in self.model.parameters()
                              if p.requires_grad and id(p) not in own]
        self.opt = torch.optim.AdamW(self.policy_params, lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        self.vopt = (torch.optim.AdamW(self.value_params, lr=cfg.value_lr or cfg.lr,
                                       weight_decay=cfg.weight_decay)
                     if self.value is not None else None)
        self.policy = self.make_policy(self.model, cfg.temperature, cfg.top_p)
        self.client = client or ExecutionClient(cfg.service_url)
        self.problems = load_data(cfg.data, cfg.seed, cfg.synthetic_problems)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.step = 0
        if resume_from is not None:
            self.resume(resume_from)
        self.memory = memory_line([m for m in (self.model, self.ref, self.value) if m],
                                  self.model)
        # decoupled generation: a frozen copy of pi rolls out batch t+1 while pi trains on t
        self.behaviour = (frozen(copy.deepcopy(self.model)) if cfg.async_rollouts else None)
        self.background = ThreadPoolExecutor(1, thread_name_prefix="rollout")
        self.pending: Future[tuple[list[Episode], RolloutStats]] | None = None

    def load_policy(self, resume_from: Path | None) -> Any:
        cfg = self.cfg
        if cfg.lora_r and resume_from is not None:
            model = load_lora(cfg.model, str(resume_from), self.device, self.dtype)
        elif cfg.lora_r:  # the frozen base in the compute dtype, fp32 adapters
            model = add_lora(load_lm(cfg.model, self.device, self.dtype), cfg.lora_r,
                             cfg.lora_alpha)
        else:  # fp32 master weights; bf16 only inside autocast
            model = load_lm(str(resume_from or cfg.model), self.device)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        return model

    def shard(self) -> None:
        if self.cfg.lora_r or self.cfg.async_rollouts or self.cfg.eval_every:
            raise ValueError("fsdp shards full fine-tuning: set lora_r=0, "
                             "async_rollouts=false and eval_every=0")
        for model in (self.model, self.ref, self.value):
            if model is not None:
                dist.shard(model)

    def amp(self) -> torch.autocast:
        return autocast(self.device, self.dtype)

    def make_policy(self, model: Any, temperature: float, top_p: float) -> Policy:
        return Policy(model, self.tok, self.device, self.cfg.max_new_tokens, temperature,
                      top_p, self.cfg.gen_batch, self.dtype)

    def eval_policy(self) -> Policy:
        """The current weights, sampled as evaluation asks (low temperature by default)."""
        return self.make_policy(self.model, self.cfg.eval_temperature, self.cfg.eval_top_p)

    def sample(self, step: int) -> list[Problem]:
        """This step's problems: a generator seeded by (seed, rank, step), so that every
        rank draws its own problems, and a resumed run draws what it would have drawn."""
        cfg = self.cfg
        rng = random.Random(f"{cfg.seed}/{self.rank}/{step}")
        if cfg.advantage == "ppo":
            return rng.sample(self.problems, min(cfg.problems_per_step, len(self.problems)))
        groups = max(1, cfg.problems_per_step // cfg.group_size)
        picked = rng.sample(self.problems, min(groups, len(self.problems)))
        return [p for p in picked for _ in range(cfg.group_size)]

    def roll_out(self, policy: Policy, step: int) -> tuple[list[Episode], RolloutStats]:
        stats = RolloutStats()
        with dist.gathered([self.model]):
            episodes = run_episodes(self.sample(step), policy, self.client,
                                    self.cfg.max_turns, self.cfg.invalid_penalty,
                                    self.cfg.exec_retries, stats)
        return episodes, stats

    def turn_ids(self, episodes: list[Episode]) -> tuple[list[list[int]], list[list[int]]]:
        """(prompt ids, response ids) of every turn taken, episode by episode."""
        turns = [t.generation for ep in episodes for t in ep.turns]
        return ([g.prompt_ids for g in turns],
                [g.response_ids or [self.tok.eos_token_id] for g in turns])

    def batched_logprobs(self, model: torch.nn.Module, prompts: list[list[int]],
                         responses: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        mb, width = self.cfg.minibatch, max((len(r) for r in responses), default=1)
        empty = torch.zeros(0, width, device=self.device)
        logps, masks = [empty], [empty]
        for i in range(0, len(prompts), mb):
            lp, m = token_logprobs(model, prompts[i:i + mb], responses[i:i + mb],
                                   self.pad_id, self.device, self.cfg.logprob_chunk)
            logps.append(torch.nn.functional.pad(lp.float(), (0, width - lp.shape[1])))
            masks.append(torch.nn.functional.pad(m, (0, width - m.shape[1])))
        return torch.cat(logps), torch.cat(masks)

    def ref_logprobs(self, prompts: list[list[int]],
                     responses: list[list[int]]) -> torch.Tensor:
        if self.ref is not None:
            return self.batched_logprobs(self.ref, prompts, responses)[0]
        with self.model.disable_adapter():
            return self.batched_logprobs(self.model, prompts, responses)[0]

    def next_async_batch(self) -> tuple[tuple[list[Episode], RolloutStats], torch.Tensor]:
        """This step's episodes, rolled out by the one-step-stale copy, and that copy's
        token log-probs; then the copy takes the new weights and starts the next batch."""
        assert self.behaviour is not None
        if self.pending is None:
            self.pending = self.background.submit(self.roll_out, self.behaviour_policy(),
                                                  self.step)
        batch = self.pending.result()
        with torch.no_grad(), self.amp():  # before the copy takes the new weights
            logp_beh = self.batched_logprobs(self.behaviour, *self.turn_ids(batch[0]))[0]
        self.behaviour.load_state_dict(self.model.state_dict())
        self.pending = self.background.submit(self.roll_out, self.behaviour_policy(),
                                              self.step + 1)
        return batch, logp_beh

    def behaviour_policy(self) -> Policy:
        assert self.behaviour is not None
        return self.make_policy(self.behaviour, self.cfg.temperature, self.cfg.top_p)

    def close(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
        self.background.shutdown(wait=True)

    def save(self, tag: str) -> Path:
        """A checkpoint: the policy as a HF model dir, plus V and the optimiser state.

        Every rank calls it (sharded weights are gathered first); rank 0 writes."""
        path = self.out / tag
        tmp = self.out / f".{tag}.tmp"
        full = dist.full_state(self.model) if self.sharded else None
        if self.rank != 0:
            return path
        # checkpoints keep LoRA adapters (to resume); the final model is merged, so that
        # `rlef eval` and any HF tool load it as a plain model
        final = self.cfg.lora_r and tag == "final"
        model = self.model.merge_and_unload() if final else self.model
        model.save_pretrained(tmp, state_dict=full)
        self.tok.save_pretrained(tmp)
        sharded = self.sharded  # sharded optimiser state is not kept: no resume under fsdp
        torch.save({"step": self.step,
                    "value": self.value.own_state() if self.value and not sharded else None,
                    "opt": None if sharded else self.opt.state_dict(),
                    "vopt": self.vopt.state_dict() if self.vopt and not sharded else None,
                    "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)  # a crash mid-save leaves the previous checkpoint intact
        return path

    def resume(self, path: Path) -> None:
        if self.sharded:
            raise ValueError("--resume is not supported with fsdp yet")
        state = torch.load(path / "trainer_state.pt", map_location=self.device,
                           weights_only=False)
        self.step = state["step"]
        if self.value is not None and self.vopt is not None:
            self.value.load_own_state(state["value"])
            self.vopt.load_state_dict(state["vopt"])
        self.opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["torch_rng"])
