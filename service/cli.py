"""The service's commands: `rlef serve | worker | run | demo`.

`rlef` (rlef_cli/) adds them beside the trainer's; `rlef-service` (or
`python -m service.cli`, as in the service image) is these alone, with no trainer code.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from service.cmdline import fail, serve_in_thread
from service.schema import ExecuteRequest, ExecuteResult

Backend = Annotated[str, typer.Option(help="sandbox backend: local (bubblewrap) or docker")]
RedisUrl = Annotated[str | None, typer.Option(help="redis://host:6379/0 (queue mode)")]


def settings_with(**overrides: Any) -> Any:
    from service.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def serve(backend: Backend = "local", host: str = "127.0.0.1", port: int = 8000,
          pool_size: Annotated[int | None, typer.Option(help="warm sandboxes")] = None,
          redis_url: RedisUrl = None) -> None:
    """Start the HTTP API (uvicorn). With --redis-url it fronts the queue and its workers."""
    import uvicorn

    from service.app import create_app

    settings = settings_with(backend=backend, host=host, port=port, pool_size=pool_size,
                             redis_url=redis_url)
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def worker(redis_url: Annotated[str, typer.Option(help="redis://host:6379/0")],
           backend: Backend = "docker",
           concurrency: Annotated[int | None, typer.Option(help="jobs at a time")] = None,
           ) -> None:
    """Run jobs from the Redis queue until SIGTERM (then finish the jobs in hand)."""
    from redis.exceptions import RedisError

    from service.executor import executor_config
    from service.sandbox import open_sandbox
    from service.sandbox.base import SandboxError
    from service.worker import Worker, consumer_name, install_signal_handlers
    from service.worker_store import WorkerStore

    settings = settings_with(backend=backend, redis_url=redis_url,
                             worker_concurrency=concurrency)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    n = settings.worker_concurrency
    try:
        sandbox = open_sandbox(settings.model_copy(update={"pool_size": n}))
    except SandboxError as e:
        raise fail(str(e)) from e
    store = WorkerStore(redis_url, consumer_name(), ttl_s=settings.result_ttl_s)
    w = Worker(store, sandbox, executor_config(settings), concurrency=n,
               visibility_s=settings.visibility_timeout_s, max_attempts=settings.max_attempts,
               settings=settings)
    install_signal_handlers(w)
    try:
        w.run()
    except RedisError as e:
        raise fail(f"Redis at {redis_url}: {e}") from e
    finally:
        sandbox.close()


def load_request(file: Path, language: str, tests: Path) -> ExecuteRequest:
    try:
        code = file.read_text()
        spec = json.loads(tests.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise fail(f"cannot read input: {e}") from e
    except json.JSONDecodeError as e:
        raise fail(f"{tests} is not valid JSON: {e}") from e
    body = spec if isinstance(spec, dict) else {"tests": spec}
    try:
        return ExecuteRequest.model_validate({**body, "language": language, "code": code})
    except ValidationError as e:
        raise fail(f"invalid request:\n{e}") from e


def run_local(req: ExecuteRequest, backend: str) -> ExecuteResult:
    from service.executor import execute, executor_config
    from service.sandbox import open_sandbox
    from service.sandbox.base import SandboxError
    from service.settings import Settings
    from service.validation import request_problems

    settings = Settings(backend=backend, pool_size=1)  # type: ignore[arg-type]
    problems = request_problems(req, settings)
    if problems:
        raise fail("; ".join(problems))
    try:
        sandbox = open_sandbox(settings)
    except SandboxError as e:
        raise fail(str(e)) from e
    try:
        return execute(req, sandbox, executor_config(settings))
    finally:
        sandbox.close()


def print_result(res: ExecuteResult) -> None:
    if res.status != "ok":
        typer.secho(f"sandbox_error: {res.error}", fg="red")
        return
    color = "green" if res.verdict == "accepted" else "yellow"
    typer.secho(f"verdict: {res.verdict} ({res.passed}/{res.total} passed)", fg=color)
    for i, t in enumerate(res.tests):
        typer.echo(f"  test {i + 1}: {t.verdict.value:<22} {t.wall_time_s * 1000:7.1f} ms "
                   f"{t.max_rss_kb / 1024:6.1f} MB")
    typer.echo("\nfeedback:\n" + res.feedback)


def run(file: Path, language: Annotated[str, typer.Option("--language", "-l")],
        tests: Annotated[Path, typer.Option(help="JSON: a list of tests, or a request body")],
        service_url: Annotated[str | None, typer.Option(help="else in-process")] = None,
        backend: Backend = "local", as_json: Annotated[bool, typer.Option("--json")] = False,
        ) -> None:
    """Execute one program against its tests and print the feedback."""
    req = load_request(file, language, tests)
    if service_url:
        from service.client import ExecutionClient, ServiceError

        try:
            res = ExecutionClient(service_url).execute(req)
        except ServiceError as e:
            raise fail(str(e)) from e
    else:
        res = run_local(req, backend)
    if as_json:
        typer.echo(res.model_dump_json(indent=2))
    else:
        print_result(res)


DEMO_BUGGY = "n = int(input())\nprint(sum(range(n)))\n"
DEMO_FIXED = "n = int(input())\nprint(sum(range(n + 1)))\n"


def demo(backend: Backend = "local") -> None:
    """Start the service, send it a buggy and a fixed program, print the feedback."""
    from service.app import create_app
    from service.client import ExecutionClient
    from service.settings import Settings

    settings = Settings(backend=backend, pool_size=1)  # type: ignore[arg-type]
    tests = [{"type": "stdio", "stdin": f"{n}\n", "expected_stdout": str(n * (n + 1) // 2)}
             for n in (1, 4, 10)]
    with serve_in_thread(create_app(settings)) as url:
        client = ExecutionClient(url)
        for title, code in (("buggy", DEMO_BUGGY), ("fixed", DEMO_FIXED)):
            typer.secho(f"\n== {title} program, {backend} backend, via {url}/execute ==",
                        bold=True)
            typer.echo(code)
            req = ExecuteRequest.model_validate(
                {"language": "python", "code": code, "tests": tests})
            print_result(client.execute(req))


def register(app: typer.Typer) -> None:
    for command in (serve, worker, run, demo):
        app.command()(command)


def main() -> None:
    """`rlef-service`: the service's commands alone."""
    app = typer.Typer(add_completion=False, no_args_is_help=True,
                      help="rlef-service: the sandboxed execution feedback service.")
    register(app)
    app(prog_name="rlef-service")


if __name__ == "__main__":
    main()
