"""Service settings from RLEF_* environment variables; built in main()/lifespan only."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from service.schema import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLEF_", extra="ignore")

    backend: Literal["local", "docker"] = "local"
    host: str = "127.0.0.1"
    port: int = 8000
    api_token: str | None = None
    redis_url: str | None = None

    # warm sandbox pool
    pool_size: int = 2
    max_jobs_per_sandbox: int = 500
    sandbox_work_mb: int = 512
    docker_image: str = "rlef-sandbox:latest"
    docker_runtime: str = "runc"
    docker_memory_mb: int = 2560
    docker_cpus: float = 1.0
    docker_pids: int = 256

    # server-side maxima for what a request may ask
    max_cpu_time_s: float = 30.0
    max_wall_time_s: float = 60.0
    max_memory_mb: int = 2048
    max_output_kb: int = 16384
    max_pids: int = 256
    max_code_kb: int = 512
    max_input_kb: int = 16384
    max_tests: int = 1000
    max_body_mb: int = 64

    # compilation, once per submission
    compile_cpu_time_s: float = 30.0
    compile_wall_time_s: float = 60.0
    compile_memory_mb: int = 2048

    feedback_max_chars: int = 2000

    # queue (in-process, or Redis Streams when redis_url is set)
    max_queue_depth: int = 20000
    result_ttl_s: int = 3600
    visibility_timeout_s: float = 60.0
    max_attempts: int = 3
    worker_concurrency: int = 2

    def max_limits(self) -> Limits:
        return Limits(cpu_time_s=self.max_cpu_time_s, wall_time_s=self.max_wall_time_s,
                      memory_mb=self.max_memory_mb, output_kb=self.max_output_kb,
                      pids=self.max_pids)
