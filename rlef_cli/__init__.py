"""The `rlef` command: every command group of the project on one typer app.

This package sits above service/ and trainer/ so that neither imports the other: each
group is a module with `register(app: typer.Typer)`, listed once in GROUPS below.
Adding a group (say `rlef score`) is one line there.
"""

from __future__ import annotations

import importlib

import typer

GROUPS = (
    "service.cli",  # serve, worker, run, demo
    "trainer.cli",  # train, eval, plot, tiny-model, demo-train (torch only when they run)
    "integrations.cli",  # score
)


def build_app() -> typer.Typer:
    app = typer.Typer(add_completion=False, no_args_is_help=True,
                      help="rlef: sandboxed execution feedback and RLEF training for code LLMs.")
    for name in GROUPS:
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    build_app()()
