"""Idempotency-Key with Stripe's semantics: replay, conflict, expiry, and concurrency."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from jobs.models import IdempotencyKey, Job
from tests.conftest import SAMPLE_AUDIO
from tests.support.api_factories import api_for, new_client, wav_bytes

URL = "/api/v1/jobs/"
SAMPLE = Path(SAMPLE_AUDIO).read_bytes()


def post(api, key: str | None, content: bytes = SAMPLE, **fields):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    data = {"audio": SimpleUploadedFile("a.wav", content, "audio/wav"), "title": "T", **fields}
    return api.post(URL, data, format="multipart", **headers)


@pytest.mark.django_db
def test_the_same_key_and_request_replay_the_first_response_and_make_one_job():
    client, key = new_client()
    api = api_for(key)
    first = post(api, "key-1", external_id="e1")
    again = post(api, "key-1", external_id="e1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Job.objects.filter(client=client).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [{"external_id": "e2"}, {"content": wav_bytes(1)}, {"metadata": '{"a": 1}'}],
    ids=["field", "file", "metadata"],
)
def test_the_same_key_with_a_different_request_answers_422(change):
    client, key = new_client()
    api = api_for(key)
    assert post(api, "key-2", external_id="e1").status_code == 201
    response = post(api, "key-2", **{"external_id": "e1", **change})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Job.objects.filter(client=client).count() == 1


@pytest.mark.django_db
def test_keys_belong_to_one_client_and_expire_after_a_day():
    client, key = new_client()
    other, other_key = new_client()
    assert post(api_for(key), "shared").status_code == 201
    assert post(api_for(other_key), "shared").status_code == 201
    assert Job.objects.filter(client=other).count() == 1

    IdempotencyKey.objects.filter(client=client).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    again = post(api_for(key), "shared")
    assert again.status_code == 201 and not again.has_header("Idempotent-Replayed")
    assert Job.objects.filter(client=client).count() == 2


@pytest.mark.django_db
def test_a_refused_request_does_not_use_up_its_key():
    client, key = new_client()
    api = api_for(key)
    assert post(api, "key-3", content=b"not audio at all").status_code == 415
    assert post(api, "key-3").status_code == 201
    assert Job.objects.filter(client=client).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", "x" * 256, "ключ"], ids=["empty", "too-long", "non-ascii"])
def test_a_malformed_key_answers_400(bad):
    _, key = new_client()
    response = api_for(key).post(
        URL, {"audio_url": "https://example.org/a.wav"}, format="json", HTTP_IDEMPOTENCY_KEY=bad
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_key_create_one_job(platform, api_key):
    """Eight simultaneous submissions with one key, against the real web process."""
    key = f"concurrent-{uuid.uuid4()}"
    external_id = f"race-{uuid.uuid4()}"
    barrier = threading.Barrier(8)
    results: list[requests.Response] = []

    def submit() -> None:
        session = platform.api(api_key)
        barrier.wait()
        response = session.post(
            f"{platform.url}{URL}",
            json={"audio_url": "http://127.0.0.1:9/never-fetched.wav", "external_id": external_id},
            headers={"Idempotency-Key": key},
            timeout=60,
        )
        results.append(response)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert len(results) == 8
    assert Job.objects.filter(external_id=external_id).count() == 1
    created = [r for r in results if r.status_code == 201]
    assert created, [r.text for r in results]
    assert {r.json()["id"] for r in created} == {str(Job.objects.get(external_id=external_id).id)}
    # Every other answer is the replay, or Stripe's 409 for a key still in flight.
    assert all(r.status_code in (201, 409) for r in results), [r.text for r in results]
