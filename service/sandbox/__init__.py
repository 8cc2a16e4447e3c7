"""Sandbox backends behind one interface (see base.Sandbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.sandbox.base import Sandbox
    from service.settings import Settings


def open_sandbox(settings: Settings, backend: str | None = None) -> Sandbox:
    """Start the configured backend's warm pool (blocks until it is ready)."""
    backend = backend or settings.backend
    if backend == "docker":
        from service.sandbox.container import DockerSandbox

        return DockerSandbox(
            image=settings.docker_image, pool_size=settings.pool_size,
            max_jobs=settings.max_jobs_per_sandbox, memory_mb=settings.docker_memory_mb,
            pids=settings.docker_pids, cpus=settings.docker_cpus,
            work_mb=settings.sandbox_work_mb, runtime=settings.docker_runtime)
    from service.sandbox.local import LocalSandbox

    return LocalSandbox(pool_size=settings.pool_size, max_jobs=settings.max_jobs_per_sandbox,
                        work_mb=settings.sandbox_work_mb)
