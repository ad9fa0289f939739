"""The OpenAPI contract: served publicly, complete, and held by the live API under fuzzing."""

from __future__ import annotations

import time

import hypothesis
import pytest
import schemathesis
from django.utils import timezone
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from jobs.models import AnalysisTemplate, Job
from tests.support.api_factories import make_job, make_meeting, new_client

SPEC_ERROR_STATUSES = {"400", "404", "409", "413", "415", "422"}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_the_schema_and_docs_are_public(client):
    assert client.get("/api/schema/").status_code == 200
    # A wrong key must not hide the contract either.
    assert client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer nope").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


@pytest.mark.django_db
def test_every_operation_declares_bearer_auth_and_its_errors(schema):
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    ours = {
        (path, method): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if "/webhooks/" not in path  # the webhooks endpoints document themselves
    }
    assert len(ours) == 19
    error_ref = "#/components/schemas/ErrorResponse"
    for (path, method), op in ours.items():
        assert op["security"] == [{"ApiKey": []}], (path, method)
        for status in ("401", "429"):
            body = op["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": error_ref}, (path, method, status)
        assert "Retry-After" in op["responses"]["429"]["headers"], (path, method)
        documented = set(op["responses"]) & SPEC_ERROR_STATUSES
        if "{id}" in path:
            assert "404" in documented, (path, method)
    create = schema["paths"]["/api/v1/jobs/"]["post"]
    assert {"400", "413", "415", "422", "409"} <= set(create["responses"])
    assert set(create["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    upload = schema["components"]["schemas"]["JobCreateRequest"]["properties"]["audio"]
    assert upload["format"] == "binary"
    for action in ("retry", "cancel", "reprocess"):
        assert "409" in schema["paths"][f"/api/v1/jobs/{{id}}/{action}/"]["post"]["responses"]


def _fuzz(operation, session, base_url: str, mode: GenerationMode, examples: int, **fixed) -> None:
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(mode, path_parameters=fixed or None))
    def run(case) -> None:
        case.call_and_validate(
            base_url=base_url,
            session=session,
            checks=[not_a_server_error, response_schema_conformance],
            timeout=30,
        )

    run()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_fuzzing_the_live_api_finds_no_server_errors_or_schema_violations(platform):
    """Schemathesis against the running web process, every operation, valid and invalid input.

    Each operation runs with generated ids and with the ids of a real job and
    meeting of the client, so object endpoints are exercised past their 404.
    Each operation gets its own client so the throttle does not mask answers.
    """
    schema = schemathesis.openapi.from_url(f"{platform.url}/api/schema/?format=json")
    started, failures, covered = time.monotonic(), [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        client, key = new_client()
        job = make_job(client, status=Job.Status.COMPLETED, transcript_saved_at=timezone.now())
        meeting = make_meeting(job, [("A", 0, 1500, "Hello"), ("B", 1500, 4000, "Hi <there>")])
        session = platform.api(key)
        real = {}
        if "/templates/{id}" in operation.path:
            real["id"] = str(
                AnalysisTemplate.objects.create(client=client, name="Board", sections=[]).id
            )
        elif "{id}" in operation.path:
            real["id"] = str(meeting.id if "/meetings/" in operation.path else job.id)
        if "{label}" in operation.path:
            real["label"] = "A"
        runs = [(GenerationMode.POSITIVE, 25, {}), (GenerationMode.NEGATIVE, 10, {})]
        if real:
            runs.append((GenerationMode.POSITIVE, 10, real))
        for mode, examples, fixed in runs:
            try:
                _fuzz(operation, session, platform.url, mode, examples, **fixed)
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure
                failures.append(f"{operation.label} ({mode.value}, ids={bool(fixed)}): {exc}")
        covered.append(operation.label)
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {len(covered)} operations in {elapsed:.0f}s: {', '.join(covered)}")
    assert len(covered) >= 10
    assert not failures, "\n\n".join(failures)
