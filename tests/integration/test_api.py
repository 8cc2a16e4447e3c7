"""The HTTP API over a real local sandbox: routes, 4xx reasons, OpenAPI."""

import json

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

HELLO = {"language": "python", "code": "print(input())",
         "tests": [{"type": "stdio", "stdin": "hi", "expected_stdout": "hi"}]}


@pytest.fixture(scope="module")
def client():
    settings = Settings(pool_size=1, max_body_mb=1, max_code_kb=64)
    with TestClient(create_app(settings)) as c:
        yield c


def test_execute_and_health(client):
    r = client.post("/execute", json=HELLO)
    assert r.status_code == 200
    body = r.json()
    assert body["verdict"] == "accepted" and body["status"] == "ok"
    assert body["tests"][0]["wall_time_s"] > 0
    h = client.get("/healthz")
    assert h.status_code == 200 and h.json()["backend"] == "local"


def test_languages_lists_versions(client):
    r = client.get("/languages")
    assert r.status_code == 200
    langs = {x["id"]: x for x in r.json()}
    assert set(langs) == {"python", "cpp", "c", "javascript", "java", "rust", "go", "bash", "sql"}
    assert langs["python"]["version"].startswith("Python 3")
    assert "SQLite" in langs["sql"]["version"]
    assert all(x["version"] != "unavailable" for x in langs.values()), langs


@pytest.mark.parametrize("body,needle", [
    ({**HELLO, "language": "cobol"}, "language"),
    ({**HELLO, "tests": []}, "tests"),
    ({**HELLO, "limits": {"cpu_time_s": 1000}}, "exceeds the server maximum"),
    ({**HELLO, "limits": {"memory_mb": -1}}, "memory_mb"),
    ({**HELLO, "code": "x" * 70000}, "code is larger"),
    ({**HELLO, "language": "cpp", "tests": [{"type": "call", "entry_point": "f"}]},
     "not supported for cpp"),
    ({**HELLO, "tests": [{"type": "stdio", "expected_stdout": "", "checker": "program"}]},
     "needs checker_code"),
    ({**HELLO, "tests": [{"type": "nope"}]}, "type"),
    ({**HELLO, "surprise": 1}, "surprise"),
])
def test_bad_requests_get_422_with_reason(client, body, needle):
    r = client.post("/execute", json=body)
    assert r.status_code == 422
    assert needle in json.dumps(r.json())


def test_malformed_json_and_oversize_body(client):
    r = client.post("/execute", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.text
    big = json.dumps({**HELLO, "code": "#" * (2 << 20)})
    r = client.post("/execute", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/execute" in schema["paths"]
