"""Schemathesis against the OpenAPI schema of a real `rlef serve`: no 5xx, every answer
documented (status code, content type, body schema). Bounded: a few dozen cases per route.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from trainer.demo import local_service

CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance,
          content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_service(tmp_path_factory.mktemp("fuzz") / "service.log") as url:
        yield url


def test_api_conforms_to_its_schema(api_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def check(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(checks=CHECKS, timeout=60)

        check()
