"""`rlef train | eval | plot | tiny-model | demo-train`, registered on `rlef` by rlef_cli/.

Nothing heavy is imported at module level: `rlef serve` must not pay for torch, and the
service image does not install it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from service.client import fail

Url = Annotated[str, typer.Option(help="execution service: http://host:port or redis://host/db")]
Model = Annotated[str, typer.Option(help="Hugging Face causal LM: a local path or a name")]
Data = Annotated[str, typer.Option(help="problems JSONL (APPS, CodeContests, MBPP, HumanEval) "
                                        "or 'synthetic'")]


def need_train_extra() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        raise fail(f"{e.name} is not installed: pip install 'rlef[train]'") from e


def check_service(url: str) -> Any:
    from service.client import ExecutionClient, ServiceError

    client = ExecutionClient(url)
    if url.startswith("http"):
        try:
            client.health()
        except ServiceError as e:
            raise fail(f"execution service: {e}") from e
    return client


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """--set key=value pairs; values are YAML scalars (numbers, booleans, strings)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--set expects key=value, got {pair!r}")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out


def train(service_url: Url = "http://127.0.0.1:8000", model: Model = "", data: Data = "",
          config: Annotated[Path | None, typer.Option(help="YAML config file")] = None,
          out_dir: Annotated[str | None, typer.Option()] = None,
          steps: Annotated[int | None, typer.Option()] = None,
          resume: Annotated[bool, typer.Option(help="continue from the last checkpoint")] = False,
          set_: Annotated[list[str] | None, typer.Option("--set", help="any config key=value")]
          = None,
          dry_run: Annotated[bool, typer.Option(help="print the per-GPU memory plan from the "
                                                     "model's config and exit")] = False,
          gpus: Annotated[int, typer.Option(help="GPUs the dry-run plan shares over")] = 1,
          ) -> None:
    """Train a policy with RLEF (multi-turn PPO on execution feedback)."""
    need_train_extra()
    from pydantic import ValidationError

    from trainer.config import load_config
    from trainer.data import DataError

    overrides = {"service_url": service_url, "model": model or None, "data": data or None,
                 "out_dir": out_dir, "steps": steps, **parse_sets(set_ or [])}
    try:
        cfg = load_config(str(config) if config else None, overrides)
    except (ValidationError, ValueError, OSError) as e:
        raise fail(f"config: {e}") from e
    if dry_run:
        from trainer.memory import model_config, plan

        if not cfg.model:
            raise fail("--model is required (or set it in --config)")
        try:
            typer.echo(plan(cfg, model_config(cfg.model), gpus).table())
        except (OSError, ValueError) as e:
            raise fail(f"model config: {e}") from e
        return
    if not cfg.model or not cfg.data:
        raise fail("--model and --data are required (or set them in --config)")
    client = check_service(cfg.service_url)
    from trainer.loop import fit

    try:
        final = fit(cfg, client, resume=resume)
    except (DataError, OSError) as e:
        raise fail(str(e)) from e
    typer.echo(f"final policy: {final}\ncurves: {Path(cfg.out_dir) / 'curves.png'}")


def evaluate(service_url: Url = "http://127.0.0.1:8000", model: Model = "", data: Data = "",
             turns: Annotated[int, typer.Option(help="max turns per rollout")] = 3,
             samples: Annotated[int, typer.Option(help="rollouts per problem")] = 1,
             limit: Annotated[int | None, typer.Option(help="first N problems")] = None,
             temperature: Annotated[float | None, typer.Option()] = None,
             top_p: Annotated[float | None, typer.Option()] = None,
             max_new_tokens: Annotated[int, typer.Option()] = 1024,
             device: str = "auto",
             ten_at_hundred: Annotated[bool, typer.Option(
                 help="also 10@100 (100 samples per problem) multi-turn and independent")]
             = False,
             out: Annotated[Path | None, typer.Option(help="write the report as JSON")] = None,
             ) -> None:
    """Solve rates n@k, single- vs multi-turn, and pass by turn."""
    need_train_extra()
    if not model or not data:
        raise fail("--model and --data are required")
    if turns < 1 or samples < 1:
        raise fail("--turns and --samples must be at least 1")
    client = check_service(service_url)
    from trainer import eval as ev
    from trainer.data import DataError, load_problems, synthetic_problems
    from trainer.models import compute_dtype, load_lm, load_tokenizer, pick_device
    from trainer.policy import Policy

    try:
        problems = (synthetic_problems(limit or 64, 10_000) if data == "synthetic"
                    else load_problems(data, limit)[0])
        dev = pick_device(device)
        dtype = compute_dtype("auto", dev)  # inference only: bf16 weights on CUDA
        tok, lm = load_tokenizer(model), load_lm(model, dev, dtype)
    except (DataError, OSError) as e:
        raise fail(str(e)) from e
    default_t, default_p = ev.sampling_defaults(samples)
    policy = Policy(lm, tok, dev, max_new_tokens, default_t if temperature is None else temperature,
                    default_p if top_p is None else top_p, dtype=dtype)
    report = ev.evaluate(problems, policy, client, turns, samples, progress=True,
                         equal_budget=True, hundred=ten_at_hundred)
    typer.echo(ev.table(report, f"{model} on {data}"))
    if out:
        out.write_text(json.dumps(report.model_dump(), indent=2))


def plot(run_dir: Path) -> None:
    """Write RUN_DIR/curves.png from RUN_DIR/metrics.jsonl."""
    from trainer.plot import plot_run

    try:
        typer.echo(plot_run(run_dir))
    except FileNotFoundError as e:
        raise fail(str(e)) from e


def tiny_model(out: Path, warmup_examples: Annotated[int, typer.Option()] = 8000) -> None:
    """Build the tiny local demo model (no download) with its brief format warm-up."""
    need_train_extra()
    from trainer.tiny import build_warmed_tiny_model

    typer.echo(build_warmed_tiny_model(out, warmup_examples))


def demo_train(config: Annotated[Path, typer.Option()] = Path("configs/tiny-repair.yaml"),
               out_dir: Annotated[str | None, typer.Option()] = None,
               steps: Annotated[int | None, typer.Option()] = None,
               seeds: Annotated[int, typer.Option(help="RL seeds (repair task)")] = 3,
               out: Annotated[Path | None, typer.Option(help="the report as JSON")]
               = None) -> None:
    """Tiny model, real local service: does RLEF teach it to repair code from feedback?

    The default (configs/tiny-repair.yaml) ends with one `repair: ...` line;
    configs/tiny-synthetic.yaml is the older secret-digit demo (copying from feedback)."""
    need_train_extra()
    from pydantic import ValidationError

    from service.client import ServiceError
    from trainer.config import load_config
    from trainer.demo import before_after, run_demo

    try:
        cfg = load_config(str(config), {"out_dir": out_dir, "steps": steps})
    except (ValidationError, ValueError, OSError) as e:
        raise fail(f"config: {e}") from e
    if out_dir:  # keep the tiny model inside the chosen run directory
        cfg = cfg.model_copy(update={"model": str(Path(out_dir) / "tiny-model")})
    try:
        if cfg.data == "repair":
            from trainer.repair_demo import repair_line, repair_table, run_repair

            repair = run_repair(cfg, seeds)
            typer.echo(repair_table(repair) + "\n" + repair_line(repair))
            if out:
                out.write_text(repair.model_dump_json(indent=2))
            return
        report = run_demo(cfg)
    except ServiceError as e:
        raise fail(str(e)) from e
    typer.echo(before_after(report))
    if out:
        out.write_text(report.model_dump_json(indent=2))


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("eval")(evaluate)
    app.command()(plot)
    app.command("tiny-model")(tiny_model)
    app.command("demo-train")(demo_train)
