"""The outer loop of `rlef train`: steps, evaluation, logs, checkpoints, the final plot.

Under torchrun every rank trains (trainer/dist.py keeps the weights identical); only
rank 0 writes metrics, TensorBoard, checkpoints and the plot.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from trainer import dist
from trainer.config import TrainConfig
from trainer.data import Problem, load_problems, synthetic_problems
from trainer.train import Trainer


def held_out(cfg: TrainConfig) -> list[Problem]:
    """Evaluation problems: --eval-data, or fresh synthetic ones (other secrets)."""
    if cfg.eval_data:
        return load_problems(cfg.eval_data, limit=cfg.eval_problems)[0]
    if cfg.data == "synthetic":
        return synthetic_problems(cfg.eval_problems, cfg.seed + 10_000)
    if cfg.data == "repair":
        from trainer.repair import repair_problems

        return repair_problems(cfg.eval_problems, 10_000)
    return []


def checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def trim_metrics(path: Path, step: int) -> None:
    """After a resume, rows logged past the checkpoint would be logged again: drop them."""
    if path.exists():
        rows = [r for r in path.read_text().splitlines() if json.loads(r)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


class RunLog:
    """metrics.jsonl, TensorBoard and the progress bar (rank 0 only)."""

    def __init__(self, out: Path, cfg: TrainConfig, start: int, resumed: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        (out / "config.json").write_text(cfg.model_dump_json(indent=2))
        self.metrics = out / "metrics.jsonl"
        trim_metrics(self.metrics, start) if resumed else self.metrics.unlink(missing_ok=True)
        self.writer = SummaryWriter(str(out / "tb"))
        self.bar = tqdm(total=cfg.steps, initial=start, desc="rlef train", unit="step")

    def write(self, row: dict[str, Any]) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in row.items():
            self.writer.add_scalar(key, value, row["step"])
        self.bar.set_postfix(reward=f"{row['reward']:.2f}", solve=f"{row['solve_rate']:.2f}",
                             kl=f"{row['kl']:.3f}")
        self.bar.update()

    def close(self) -> None:
        self.bar.close()
        self.writer.close()


def fit(cfg: TrainConfig, client: Any | None = None, resume: bool = False) -> Path:
    """Train for cfg.steps (continuing from the last checkpoint with resume=True)."""
    from trainer.eval import evaluate
    from trainer.plot import plot_run

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = checkpoints(out)[-1] if resume and checkpoints(out) else None
    trainer = Trainer(cfg, client, resume_from=last)
    lead = trainer.rank == 0
    if lead:
        print(trainer.memory, flush=True)
    log = RunLog(out, cfg, trainer.step, last is not None) if lead else None
    eval_set = held_out(cfg) if lead else []
    while trainer.step < cfg.steps:
        row: dict[str, Any] = dist.mean_metrics(trainer.train_step(), trainer.device)
        if cfg.eval_every and eval_set and trainer.step % cfg.eval_every == 0:
            report = evaluate(eval_set, trainer.eval_policy(), trainer.client, cfg.max_turns, 1)
            row |= {"eval_turn1": report.single_turn_solve_rate,
                    "eval_solve_rate": report.multi_turn_solve_rate}
        if log is not None:
            log.write(row)
        if cfg.checkpoint_every and trainer.step % cfg.checkpoint_every == 0:
            trainer.save(f"checkpoint-{trainer.step}")  # every rank: fsdp gathers
            for old in checkpoints(out)[:-cfg.keep_checkpoints] if lead else []:
                shutil.rmtree(old)
    trainer.close()
    sums = dist.gather_floats(dist.checksum(trainer.model), trainer.device)
    held = dist.gather_floats(float(dist.local_numel(trainer.model)), trainer.device)
    final = trainer.save("final")
    if log is not None:
        log.close()
        (out / "ranks.json").write_text(json.dumps({"world": trainer.world,
                                                    "weight_checksums": sums,
                                                    "parameters_held": held}))
        plot_run(out)
    dist.finish()
    return final
