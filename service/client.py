"""Client for the rlef service, used by the trainer and the CLI."""

from __future__ import annotations

from typing import Any

import httpx

from service.schema import ExecuteRequest, ExecuteResult


class ServiceError(RuntimeError):
    """The service refused a request or could not be reached; the message says why."""


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        detail: Any = resp.json().get("detail", resp.text)
    except ValueError:
        detail = resp.text
    raise ServiceError(f"{resp.request.method} {resp.request.url.path}: "
                       f"HTTP {resp.status_code}: {detail}")


class ExecutionClient:
    def __init__(self, url: str, token: str | None = None, timeout_s: float = 600.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self._ahttp = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout_s)

    def execute(self, request: ExecuteRequest) -> ExecuteResult:
        try:
            resp = self._http.post("/execute", content=request.model_dump_json(),
                                   headers={"content-type": "application/json"})
        except httpx.HTTPError as e:
            raise ServiceError(f"cannot reach {self.url}: {e}") from e
        _raise_for(resp)
        return ExecuteResult.model_validate_json(resp.content)

    async def aexecute(self, request: ExecuteRequest) -> ExecuteResult:
        try:
            resp = await self._ahttp.post("/execute", content=request.model_dump_json(),
                                          headers={"content-type": "application/json"})
        except httpx.HTTPError as e:
            raise ServiceError(f"cannot reach {self.url}: {e}") from e
        _raise_for(resp)
        return ExecuteResult.model_validate_json(resp.content)

    def health(self) -> dict[str, Any]:
        resp = self._http.get("/healthz")
        _raise_for(resp)
        return dict(resp.json())

    def close(self) -> None:
        self._http.close()
