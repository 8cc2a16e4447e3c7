"""The layers and the one-source facts that nothing else would check: service/ never imports
the trainer or the CLI on top of it; the trainer and integrations reach the service only
through service.client and service.schema; every language has one table entry; `rlef`
carries every command group."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def imported(package: str) -> dict[str, set[str]]:
    """Every absolute module import (top level or inside functions), per file of `package`."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


def test_service_imports_neither_the_trainer_nor_what_sits_on_top():
    above = ("trainer", "rlef_cli", "integrations")
    bad = {f: sorted(n for n in names if n.split(".")[0] in above)
           for f, names in imported("service").items()}
    assert not {f: n for f, n in bad.items() if n}


def test_trainer_and_integrations_use_only_the_client_and_the_schema():
    allowed = {"service", "service.client", "service.schema"}
    files = {**imported("trainer"), **(imported("integrations")
                                       if (ROOT / "integrations").is_dir() else {})}
    bad = {f: sorted(n for n in names if n.split(".")[0] == "service" and n not in allowed)
           for f, names in files.items()}
    assert not {f: n for f, n in bad.items() if n}


def test_every_language_of_the_schema_has_one_table_entry():
    from service.languages import LANGUAGES
    from service.schema import Language

    assert sorted(LANGUAGES) == sorted(get_args(Language))


def test_rlef_has_every_command_group():
    from rlef_cli import build_app

    out = CliRunner().invoke(build_app(), ["--help"], terminal_width=200)
    assert out.exit_code == 0, out.output
    for command in ("serve", "worker", "run", "demo", "train", "eval", "plot", "demo-train"):
        assert f" {command} " in out.output, command
