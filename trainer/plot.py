"""Training curves of a run directory (metrics.jsonl) as one PNG."""

from __future__ import annotations

import json
from pathlib import Path

PANELS = [("reward", ["reward"]),
          ("solve rate", ["solve_rate", "turn1_solve_rate", "eval_solve_rate", "eval_turn1"]),
          ("KL to reference", ["kl", "approx_kl"]),
          ("losses", ["policy_loss", "value_loss"])]


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (is {run_dir} a run directory?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.5 * len(PANELS), 3.5))
    for ax, (title, keys) in zip(axes, PANELS, strict=True):
        for key in keys:
            points = [(r["step"], r[key]) for r in rows if key in r]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, label=key, marker="o" if len(points) < 20 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = out or run_dir / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
