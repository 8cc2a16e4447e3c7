"""Shared fixtures: real sandboxes (bubblewrap and Docker), no mocks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.executor import ExecutorConfig, execute, executor_config
from service.sandbox import open_sandbox
from service.sandbox.base import Sandbox
from service.schema import ExecuteRequest, ExecuteResult
from service.settings import Settings

BACKENDS = ("local", "docker")
# the hostile suites also run under gVisor (.ci/run registers the runsc runtime)
HOSTILE_BACKENDS = (*BACKENDS, "runsc")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(pool_size=2, max_jobs_per_sandbox=200)


@pytest.fixture(scope="session")
def exec_config(settings: Settings) -> ExecutorConfig:
    return executor_config(settings)


_boxes: dict[str, Sandbox] = {}


def _box(name: str, settings: Settings) -> Sandbox:
    if name not in _boxes:
        if name == "runsc":
            gvisor = settings.model_copy(update={"docker_runtime": "runsc"})
            _boxes[name] = open_sandbox(gvisor, backend="docker")
        else:
            _boxes[name] = open_sandbox(settings, backend=name)
    return _boxes[name]


@pytest.fixture(scope="session", autouse=True)
def _close_boxes() -> Iterator[None]:
    yield
    for box in _boxes.values():
        box.close()


@pytest.fixture(params=BACKENDS)
def sandbox(request: pytest.FixtureRequest, settings: Settings) -> Sandbox:
    return _box(request.param, settings)


@pytest.fixture(params=HOSTILE_BACKENDS)
def hostile_sandbox(request: pytest.FixtureRequest, settings: Settings) -> Sandbox:
    return _box(request.param, settings)


@pytest.fixture
def hostile_run(hostile_sandbox: Sandbox, exec_config: ExecutorConfig) -> Runner:
    return Runner(hostile_sandbox, exec_config)


@pytest.fixture
def local_sandbox(settings: Settings) -> Sandbox:
    return _box("local", settings)


class Runner:
    def __init__(self, sandbox: Sandbox, exec_config: ExecutorConfig) -> None:
        self.sandbox, self.exec_config = sandbox, exec_config

    def __call__(self, language: str, code: str, tests: list[dict[str, Any]],
                 **extra: Any) -> ExecuteResult:
        req = ExecuteRequest.model_validate(
            {"language": language, "code": code, "tests": tests, **extra})
        res = execute(req, self.sandbox, self.exec_config)
        assert res.status == "ok", res.error
        return res


@pytest.fixture
def run(sandbox: Sandbox, exec_config: ExecutorConfig) -> Runner:
    return Runner(sandbox, exec_config)


def stdio(stdin: str = "", expected: str = "", **kw: Any) -> dict[str, Any]:
    return {"type": "stdio", "stdin": stdin, "expected_stdout": expected, **kw}
