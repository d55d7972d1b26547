"""The OpenAPI schema is the truth: schemathesis fuzzes every operation, authenticated as an
admin, and every answer must be no server error and conform in status, media type, headers
and body to what the schema declares."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from replen.app import create_app
from replen.settings import Settings

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from tests.conftest import AccessKit

    root = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        Settings(data_dir=root / "data", mlflow_dir=root / "mlflow", rate_limit_per_minute=10**6)
    )
    headers = AccessKit(app.state.runtime.settings.db_url).headers(("admin",))
    with TestClient(app):  # runs the lifespan (velocity pusher) for the fuzzed calls
        yield app, headers


def test_every_operation_conforms_to_the_schema(served) -> None:
    app, headers = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
