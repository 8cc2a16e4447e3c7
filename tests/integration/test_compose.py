"""compose.yaml: valid for docker-compose 1.29, and the stack runs a job with local images;
the service image carries no trainer code and no torch."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx

from service.client import free_port
from tests.integration.queue_helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = shutil.which("docker-compose")
IMAGE = os.environ.get("RLEF_SERVICE_IMAGE", "rlef-service:latest")


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert COMPOSE, "docker-compose is not installed (.ci/run installs it)"
    return subprocess.run([COMPOSE, "-f", str(ROOT / "compose.yaml"), "-p", "rlefcitest", *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def test_compose_config_is_valid():
    out = compose("config", "-q", env={})
    assert out.returncode == 0, out.stderr


def test_compose_stack_runs_a_job():
    port = free_port()
    env = {"RLEF_SERVICE_IMAGE": IMAGE, "RLEF_REDIS_IMAGE": IMAGE, "RLEF_API_PORT": str(port)}
    up = compose("up", "-d", "--scale", "worker=2", env=env)
    try:
        assert up.returncode == 0, up.stderr
        base = f"http://127.0.0.1:{port}"
        # 503 {"detail": ...} until the workers have registered
        wait_until(lambda: httpx.get(f"{base}/healthz", timeout=10).json().get("workers") == 2,
                   120, "compose stack")
        body = {"language": "cpp", "code": "#include <cstdio>\nint main(){puts(\"hi\");}",
                "tests": [{"type": "stdio", "expected_stdout": "hi"}]}
        resp = httpx.post(f"{base}/execute", json=body, timeout=60)
        assert resp.status_code == 200 and resp.json()["verdict"] == "accepted", resp.text
    finally:
        down = compose("down", "-t", "60", env=env)
        assert down.returncode == 0, down.stderr


def test_service_image_has_no_trainer_and_no_torch():
    probe = "import importlib.util as u; print(u.find_spec('trainer'), u.find_spec('torch'))"
    out = subprocess.run(["docker", "run", "--rm", IMAGE, "python", "-c", probe],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "None"], out.stdout
