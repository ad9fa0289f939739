"""Monthly budgets: the submit that would start past the budget answers 429
`budget_exceeded` with Retry-After until the month turns, and stores nothing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from jobs.budgets import month_spend, next_month_start
from jobs.models import IdempotencyKey, Job
from jobs.state import update_job
from meeting_intel.lib import pricing
from tests.support.api_factories import client_with_api, make_job, wav_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced(settings):
    settings.TRANSCRIPTION_PROVIDER = "assemblyai"
    settings.ANALYSIS_PROVIDER = "local"
    settings.PRICE_TABLE = pricing.build(
        {"transcription": {"assemblyai": {"default": {"usd_per_hour": "1.00"}}}}
    )
    return settings


def _submit(api, **extra):
    return api.post(
        "/api/v1/jobs/",
        {"audio": _wav(), "title": "next"},
        format="multipart",
        **extra,
    )


def _wav():
    return SimpleUploadedFile("a.wav", wav_bytes(0.5), "audio/wav")


def _spent(client, hours: float, **fields) -> Job:
    job = make_job(
        client, transcription_provider="assemblyai", transcribed_seconds=hours * 3600, **fields
    )
    update_job(job, "Completed", status=Job.Status.COMPLETED, stage=Job.Stage.DONE)
    return job


def _media_files(settings) -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_the_submit_past_the_budget_is_refused_until_the_month_turns(priced, settings):
    client, api = client_with_api()
    client.monthly_budget_usd = Decimal("2.00")
    client.save(update_fields=["monthly_budget_usd"])
    _spent(client, 1.5)
    last_month = _spent(client, 50)
    Job.objects.filter(id=last_month.id).update(created_at=datetime(2000, 1, 31, tzinfo=UTC))

    first = _submit(api)  # 1.50 of 2.00 spent: accepted
    assert first.status_code == 201, first.json()
    Job.objects.filter(id=first.json()["id"]).update(
        transcription_provider="assemblyai", transcribed_seconds=1800
    )  # the running job's live cost brings the month to 2.00

    jobs_before, files_before = Job.objects.count(), _media_files(settings)
    refused = _submit(api, HTTP_IDEMPOTENCY_KEY="after-budget")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded"
    now = timezone.now()
    wait = int(refused["Retry-After"])
    assert abs(wait - math.ceil((next_month_start(now) - now).total_seconds())) <= 2
    assert error["details"]["budget_usd"] == 2.0 and error["details"]["spent_usd"] == 2.0
    assert error["details"]["resets_at"] == next_month_start(now).isoformat()
    assert Job.objects.count() == jobs_before
    assert not IdempotencyKey.objects.filter(key="after-budget").exists()
    assert _media_files(settings) == files_before

    # Jobs already accepted go on and finish.
    running = Job.objects.get(id=first.json()["id"])
    assert running.status == Job.Status.PENDING
    update_job(running, "Completed", status=Job.Status.COMPLETED, stage=Job.Stage.DONE)
    assert Job.objects.get(id=running.id).usage["total_usd"] == 0.5

    client.monthly_budget_usd = Decimal("2.01")
    client.save(update_fields=["monthly_budget_usd"])
    assert _submit(api).status_code == 201


def test_a_client_without_a_budget_is_never_refused(priced):
    client, api = client_with_api()
    _spent(client, 10_000)
    assert _submit(api).status_code == 201


def test_a_refused_submit_does_not_spoil_an_earlier_idempotent_reply(priced):
    client, api = client_with_api()
    client.monthly_budget_usd = Decimal("1")
    client.save(update_fields=["monthly_budget_usd"])
    first = _submit(api, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201
    _spent(client, 1)
    replay = _submit(api, HTTP_IDEMPOTENCY_KEY="k1")
    assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]


def test_staff_see_the_budget_on_the_clients_page_and_edit_it_with_change_permission(
    priced, client
):
    api_client, _ = client_with_api()
    api_client.monthly_budget_usd = Decimal("1.00")
    api_client.save(update_fields=["monthly_budget_usd"])
    _spent(api_client, 1.25)
    url = f"/admin/jobs/apiclient/{api_client.pk}/change/"

    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apiclient"))
    client.force_login(viewer)
    page = client.get(url).content.decode()
    assert "1.2500 USD spent of 1.00 USD" in page and "Budget exceeded" in page
    assert f"/admin/usage/{api_client.pk}/" in page
    assert 'name="monthly_budget_usd"' not in page  # read-only without change permission
    client.post(url, {"name": api_client.name, "monthly_budget_usd": "500"})
    api_client.refresh_from_db()
    assert api_client.monthly_budget_usd == Decimal("1.00")

    editor = User.objects.create_user("editor", password="pw", is_staff=True)
    editor.user_permissions.add(
        Permission.objects.get(codename="view_apiclient"),
        Permission.objects.get(codename="change_apiclient"),
    )
    client.force_login(editor)
    assert 'name="monthly_budget_usd"' in client.get(url).content.decode()
    response = client.post(url, {"name": api_client.name, "monthly_budget_usd": "500"})
    assert response.status_code == 302
    api_client.refresh_from_db()
    assert api_client.monthly_budget_usd == Decimal("500")
    assert (
        client.post(url, {"name": api_client.name, "monthly_budget_usd": "-1"}).status_code == 200
    )


def test_the_months_spend_adds_ended_running_and_unpriced_old_jobs(priced):
    client, _ = client_with_api()
    _spent(client, 1)  # ended: its frozen usage, summed by the database
    make_job(client, transcription_provider="assemblyai", transcribed_seconds=1800)  # running
    make_job(  # ended before usage was recorded: priced now
        client,
        status=Job.Status.COMPLETED,
        transcription_provider="assemblyai",
        transcribed_seconds=900,
    )
    other, _ = client_with_api()
    _spent(other, 7)
    assert month_spend(client) == Decimal("1.75")
    assert month_spend(client, datetime(2000, 1, 1, tzinfo=UTC)) == 0
