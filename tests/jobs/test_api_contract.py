"""The OpenAPI contract: served publicly, complete, and held by the live API under fuzzing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.utils import timezone

from jobs.models import Job
from tests.support.api_factories import make_job, make_meeting, new_client
from tests.support.platform import base_env, database_url, free_port, start_web

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
    assert "audio" in schema["components"]["schemas"]["JobCreateRequest"]["required"]
    upload = schema["components"]["schemas"]["JobCreateRequest"]["properties"]["audio"]
    assert upload["format"] == "binary"
    for action in ("retry", "cancel", "reprocess"):
        assert "409" in schema["paths"][f"/api/v1/jobs/{{id}}/{action}/"]["post"]["responses"]


ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS_CONFIG = ROOT / "tests" / "support" / "schemathesis.toml"
# Bounded so the run stays around a minute; the seed makes it the same run each time.
MAX_EXAMPLES = 10


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_schemathesis_with_every_check_and_mode_finds_nothing(django_db_setup, tmp_path):
    """`st run --checks all --mode all`, every phase (stateful included), against a web
    process with production settings (DEBUG off): the schema and the code agree."""
    from django.conf import settings
    from django.db import connection

    client, key = new_client()
    job = make_job(client, status=Job.Status.COMPLETED, transcript_saved_at=timezone.now())
    make_meeting(job, [("A", 0, 1500, "Hello"), ("B", 1500, 4000, "Hi <there>")])
    port = free_port()
    env = base_env(
        database_url(connection.settings_dict),
        settings.REDIS_URL,
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        METRICS_BEARER_TOKEN="schemathesis-metrics-token",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        MEDIA_ROOT=str(tmp_path / "media"),
        # More requests than a real client sends; a 429 would only hide answers.
        API_THROTTLE_RATE="100000/min",
    )
    web = start_web(env, port)
    try:
        started = time.monotonic()
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(SCHEMATHESIS_CONFIG),
                "run",
                f"http://127.0.0.1:{port}/api/schema/",
                "--checks",
                "all",
                "--mode",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "1",
                "--workers",
                "1",
                "--header",
                f"Authorization: Bearer {key}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        print(f"\nschemathesis ran in {time.monotonic() - started:.0f}s")
    finally:
        web.stop()
    found = result.stdout.find("FAILURES")
    summary = result.stdout[found : found + 8000] if found >= 0 else result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "Stateful" in result.stdout, "the stateful phase ran"
