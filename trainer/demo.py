"""`rlef demo-train`: the tiny model learns, in CPU minutes, to use execution feedback.

It starts a real execution service (`rlef serve --backend local`, its own process), builds
the tiny model, evaluates it on held-out secret-digit problems, trains it with RLEF
through the service URL, evaluates again and prints the before/after table.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel

from service.client import ExecutionClient, local_service
from trainer.config import TrainConfig
from trainer.eval import EvalReport


class DemoReport(BaseModel):
    before: EvalReport
    after: EvalReport
    steps: int
    train_s: float


def held_out_eval(cfg: TrainConfig, model_path: str, url: str) -> EvalReport:
    from trainer.eval import evaluate
    from trainer.loop import held_out
    from trainer.models import load_lm, load_tokenizer, pick_device
    from trainer.policy import Policy

    device = pick_device(cfg.device)
    policy = Policy(load_lm(model_path, device), load_tokenizer(model_path), device,
                    cfg.max_new_tokens, cfg.eval_temperature, cfg.eval_top_p)
    return evaluate(held_out(cfg), policy, ExecutionClient(url), cfg.max_turns, 1)


def run_demo(cfg: TrainConfig) -> DemoReport:
    from trainer.loop import fit
    from trainer.tiny import build_warmed_tiny_model

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not (Path(cfg.model) / "config.json").exists():
        build_warmed_tiny_model(cfg.model)
    with local_service(out / "service.log") as url:
        cfg = cfg.model_copy(update={"service_url": url})
        before = held_out_eval(cfg, cfg.model, url)
        t0 = time.perf_counter()
        final = fit(cfg, ExecutionClient(url))
        train_s = time.perf_counter() - t0
        after = held_out_eval(cfg, str(final), url)
    return DemoReport(before=before, after=after, steps=cfg.steps, train_s=train_s)


def before_after(report: DemoReport) -> str:
    rows = [("single-turn solve rate", "single_turn_solve_rate"),
            ("multi-turn solve rate", "multi_turn_solve_rate")]
    lines = [f"{'held-out secret-digit problems':<32}{'before':>8}{'after':>8}"]
    for title, key in rows:
        lines.append(f"{title:<32}{getattr(report.before, key):>8.1%}"
                     f"{getattr(report.after, key):>8.1%}")
    for t in range(report.before.max_turns):
        lines.append(f"{f'pass by turn {t + 1}':<32}{report.before.pass_by_turn[t]:>8.1%}"
                     f"{report.after.pass_by_turn[t]:>8.1%}")
    lines.append(f"({report.before.problems} problems, {report.steps} RL steps in "
                 f"{report.train_s:.0f}s)")
    return "\n".join(lines)
