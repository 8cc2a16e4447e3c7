"""`rlef demo-train` on the repair task: does RL teach the tiny model to repair code from
execution feedback? Controls in the same run, on the same held-out problems:

- multi-turn 1@3: one rollout of up to 3 turns, its final program on the private tests;
- independent 1@3: 3 single-turn samples, the first passing the public test submitted;
- no-feedback 1@3: multi-turn, but every feedback reads "Your code failed.";
- before RL: the warmed-up model, multi-turn.

Several RL seeds start from the same warm-up; rates are their means.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel

from service.client import ExecutionClient, local_service
from trainer.config import TrainConfig
from trainer.eval import EvalReport

BLIND = "Your code failed."


class SeedResult(BaseModel):
    seed: int
    multi_turn: EvalReport
    no_feedback: EvalReport


class RepairReport(BaseModel):
    before: EvalReport
    seeds: list[SeedResult]
    train_s: float

    def mean(self, pick: str) -> float:
        values = {"multi": [s.multi_turn.multi_turn_solve_rate for s in self.seeds],
                  "independent": [s.multi_turn.independent_1_at_k or 0.0 for s in self.seeds],
                  "blind": [s.no_feedback.multi_turn_solve_rate for s in self.seeds]}[pick]
        return sum(values) / len(values)


def evaluate_model(cfg: TrainConfig, model_path: str, url: str, problems: list,
                   blind: bool = False) -> EvalReport:
    from trainer.eval import evaluate
    from trainer.models import compute_dtype, load_lm, load_tokenizer, pick_device
    from trainer.policy import Policy

    device = pick_device(cfg.device)
    dtype = compute_dtype(cfg.precision, device)
    policy = Policy(load_lm(model_path, device), load_tokenizer(model_path), device,
                    cfg.max_new_tokens, cfg.eval_temperature, cfg.eval_top_p, cfg.gen_batch,
                    dtype)
    return evaluate(problems, policy, ExecutionClient(url), cfg.max_turns, 1,
                    equal_budget=not blind, blind_feedback=BLIND if blind else None)


def run_repair(cfg: TrainConfig, seeds: int = 3) -> RepairReport:
    from trainer.loop import fit
    from trainer.repair import repair_problems
    from trainer.tiny import build_warmed_tiny_model

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not (Path(cfg.model) / "config.json").exists():
        build_warmed_tiny_model(cfg.model, task="repair")
    held_out = repair_problems(cfg.eval_problems, 10_000)
    results, train_s = [], 0.0
    with local_service(out / "service.log") as url:
        before = evaluate_model(cfg, cfg.model, url, held_out)
        for s in range(seeds):
            run = cfg.model_copy(update={"seed": cfg.seed + s, "service_url": url,
                                         "out_dir": str(out / f"seed-{s}")})
            t0 = time.perf_counter()
            final = str(fit(run, ExecutionClient(url)))
            train_s += time.perf_counter() - t0
            results.append(SeedResult(
                seed=run.seed, multi_turn=evaluate_model(cfg, final, url, held_out),
                no_feedback=evaluate_model(cfg, final, url, held_out, blind=True)))
    return RepairReport(before=before, seeds=results, train_s=train_s)


def repair_line(report: RepairReport) -> str:
    return (f"repair: multi-turn 1@3 {report.mean('multi'):.0%}, independent 1@3 "
            f"{report.mean('independent'):.0%}, no-feedback 1@3 {report.mean('blind'):.0%} "
            f"(before RL: multi-turn {report.before.multi_turn_solve_rate:.0%})")


def repair_table(report: RepairReport) -> str:
    rows = [f"{'held-out repair problems (private tests)':<44}{'1@3':>6}{'public':>8}",
            f"{'before RL, multi-turn':<44}{report.before.multi_turn_solve_rate:>6.0%}"
            f"{report.before.public_solve_rate or 0:>8.0%}"]
    for s in report.seeds:
        m, b = s.multi_turn, s.no_feedback
        rows += [f"{f'seed {s.seed}: multi-turn':<44}{m.multi_turn_solve_rate:>6.0%}"
                 f"{m.public_solve_rate or 0:>8.0%}",
                 f"{f'seed {s.seed}: independent sampling':<44}{m.independent_1_at_k or 0:>6.0%}",
                 f"{f'seed {s.seed}: no-feedback multi-turn':<44}{b.multi_turn_solve_rate:>6.0%}"
                 f"{b.public_solve_rate or 0:>8.0%}"]
    rows.append(f"({report.before.problems} problems, {len(report.seeds)} RL seeds, "
                f"sampling at temperature {report.before.temperature}; RL {report.train_s:.0f}s)")
    return "\n".join(rows)
