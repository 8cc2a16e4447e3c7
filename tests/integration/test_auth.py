"""RLEF_API_TOKEN: every route but /healthz needs the bearer token; the client sends it."""

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.client import ExecutionClient, ServiceError
from service.schema import ExecuteRequest
from service.settings import Settings
from trainer.demo import local_service

HELLO = {"language": "python", "code": "print(1)",
         "tests": [{"type": "stdio", "expected_stdout": "1"}]}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(pool_size=1, api_token="s3cret"))) as c:
        yield c


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer s3cre", "s3cret",
                                    "Basic s3cret", "Bearer s3cret2"])
def test_routes_refuse_without_the_token(client, header):
    headers = {"Authorization": header} if header else {}
    for method, path in [("post", "/execute"), ("post", "/batches"), ("get", "/batches/x"),
                         ("get", "/languages"), ("get", "/metrics"), ("get", "/openapi.json")]:
        body = HELLO if path == "/execute" else {"requests": [HELLO]}
        kw = {"json": body} if method == "post" else {}
        r = getattr(client, method)(path, headers=headers, **kw)
        assert r.status_code == 401, (path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"


def test_token_lets_requests_in_and_healthz_stays_open(client):
    assert client.get("/healthz").status_code == 200
    r = client.post("/execute", json=HELLO, headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200 and r.json()["verdict"] == "accepted"


def test_client_sends_the_token(tmp_path, monkeypatch):
    monkeypatch.setenv("RLEF_API_TOKEN", "tok-123")
    with local_service(tmp_path / "svc.log", pool_size=1) as url:
        req = ExecuteRequest.model_validate(HELLO)
        assert ExecutionClient(url).execute(req).verdict == "accepted"  # token from env
        assert ExecutionClient(url, token="tok-123").execute_many([req])[0].verdict == "accepted"
        with pytest.raises(ServiceError, match="401"):
            ExecutionClient(url, token="nope").execute(req)
