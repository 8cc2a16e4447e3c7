"""`rlef score`: registered on the `rlef` command by rlef_cli."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def score(samples: Annotated[Path, typer.Argument(help="JSONL: task_id, completion per row")],
          data: Annotated[Path, typer.Option(help="problem file: HumanEval(.gz), MBPP, "
                                                  "HumanEval+/MBPP+, APPS, CodeContests")],
          k: Annotated[str, typer.Option(help="comma-separated k of pass@k")] = "1,10,100",
          url: Annotated[str, typer.Option(envvar="RLEF_URL",
                                           help="rlef service (http:// or redis://)")]
          = "http://127.0.0.1:8000",
          out: Annotated[Path | None, typer.Option(help="per-sample verdicts (JSONL)")] = None,
          ) -> None:
    """Score completions made by any model through the service; print pass@k."""
    from integrations.score import run_score

    ks = [int(x) for x in k.split(",") if x.strip()]
    try:
        report = run_score(samples, data, url, ks, out)
    except (ValueError, KeyError, RuntimeError, OSError) as e:
        typer.echo(f"rlef score: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(report))


def register(app: typer.Typer) -> None:
    app.command("score")(score)
