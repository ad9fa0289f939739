"""What each job used and cost: priced exactly from the price table, frozen when the job
ends, and shown in the API, the webhook, admin and the staff usage page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile

from jobs.actions import submit_job
from jobs.models import Job
from jobs.pipeline.runner import run_inline
from jobs.state import update_job
from meeting_intel import env
from meeting_intel.lib import pricing
from tests.conftest import SAMPLE_AUDIO
from tests.support.api_factories import client_with_api, make_job
from tests.support.startup import manage_check
from webhooks.outbox import event_body

USAGE_KEYS = {
    "audio_seconds",
    "prompt_tokens",
    "completion_tokens",
    "embedding_tokens",
    "transcription_usd",
    "analysis_usd",
    "embedding_usd",
    "total_usd",
}


@pytest.fixture
def priced(settings):
    settings.TRANSCRIPTION_PROVIDER = "assemblyai"
    settings.ANALYSIS_PROVIDER = "openai"
    settings.OPENAI_MODEL = "gpt-4o-mini"
    settings.OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
    settings.PRICE_TABLE = pricing.build({})
    return settings


def _expected(seconds: str, prompt: int, completion: int) -> tuple[Decimal, Decimal]:
    # From the documented defaults: AssemblyAI 0.37 USD/h; gpt-4o-mini 0.15 and 0.60 USD per 1M.
    transcription = Decimal(seconds) * Decimal("0.37") / 3600
    analysis = (prompt * Decimal("0.15") + completion * Decimal("0.60")) / 1_000_000
    return transcription.quantize(Decimal("1e-8")), analysis.quantize(Decimal("1e-8"))


@pytest.mark.django_db
def test_a_job_with_known_counts_costs_exactly_what_the_table_says(priced):
    client, api = client_with_api()
    job = make_job(
        client,
        transcription_provider="assemblyai",
        transcribed_seconds=5400,
        prompt_tokens=123_456,
        completion_tokens=7_890,
        embedding_tokens=11_175,
    )
    usage = api.get(f"/api/v1/jobs/{job.id}/").json()["usage"]
    transcription, analysis = _expected("5400", 123_456, 7_890)
    assert transcription == Decimal("0.555") and analysis == Decimal("0.0232524")
    # text-embedding-3-small: 0.02 USD per 1M tokens.
    embedding = Decimal("0.0002235")
    assert usage == {
        "audio_seconds": 5400.0,
        "prompt_tokens": 123_456,
        "completion_tokens": 7_890,
        "embedding_tokens": 11_175,
        "transcription_usd": float(transcription),
        "analysis_usd": float(analysis),
        "embedding_usd": float(embedding),
        "total_usd": float(transcription + analysis + embedding),
    }


@pytest.mark.django_db
def test_search_embeddings_are_priced_at_the_configured_embedding_model(priced):
    client, api = client_with_api()
    job = make_job(client, transcription_provider="assemblyai", embedding_tokens=2_000_000)
    priced.OPENAI_EMBEDDING_MODEL = "text-embedding-3-large"
    usage = api.get(f"/api/v1/jobs/{job.id}/").json()["usage"]
    assert usage["embedding_tokens"] == 2_000_000 and usage["embedding_usd"] == 0.26
    assert usage["total_usd"] == 0.26
    priced.ANALYSIS_PROVIDER = "local"  # the offline model embeds, for nothing
    assert api.get(f"/api/v1/jobs/{job.id}/").json()["usage"]["embedding_usd"] == 0
    priced.PRICE_TABLE = pricing.build(
        {"embedding": {"local": {"*": {"usd_per_1m": "0.5"}}}}  # a contract may price anything
    )
    assert api.get(f"/api/v1/jobs/{job.id}/").json()["usage"]["embedding_usd"] == 1.0


@pytest.mark.django_db
def test_a_bill_frozen_before_embeddings_were_priced_shows_them_as_nothing(priced):
    client, api = client_with_api()
    job = make_job(client, status=Job.Status.COMPLETED, embedding_tokens=5000)
    old = {k: 0 for k in USAGE_KEYS - {"embedding_tokens", "embedding_usd"}}
    Job.objects.filter(id=job.id).update(usage={**old, "total_usd": 1.5})
    usage = api.get(f"/api/v1/jobs/{job.id}/").json()["usage"]
    assert usage["embedding_tokens"] == 0 and usage["embedding_usd"] == 0
    assert usage["total_usd"] == 1.5


@pytest.mark.django_db
def test_offline_providers_cost_nothing(settings):
    settings.TRANSCRIPTION_PROVIDER = settings.ANALYSIS_PROVIDER = "local"
    client, api = client_with_api()
    job = make_job(client, transcription_provider="local", transcribed_seconds=3600)
    usage = api.get(f"/api/v1/jobs/{job.id}/").json()["usage"]
    assert usage["audio_seconds"] == 3600.0
    assert usage["transcription_usd"] == usage["analysis_usd"] == usage["total_usd"] == 0


@pytest.mark.django_db
def test_the_bill_is_frozen_when_the_job_ends(priced):
    client, api = client_with_api()
    job = make_job(client, transcription_provider="assemblyai", transcribed_seconds=3600)
    update_job(job, "Completed", status=Job.Status.COMPLETED, stage=Job.Stage.DONE)
    assert Job.objects.get(id=job.id).usage["transcription_usd"] == 0.37
    priced.PRICE_TABLE = pricing.build(
        {"transcription": {"assemblyai": {"default": {"usd_per_hour": "9"}}}}
    )
    assert api.get(f"/api/v1/jobs/{job.id}/").json()["usage"]["total_usd"] == 0.37
    running = make_job(client, transcription_provider="assemblyai", transcribed_seconds=3600)
    assert api.get(f"/api/v1/jobs/{running.id}/").json()["usage"]["total_usd"] == 9.0


@pytest.mark.django_db
def test_the_webhook_carries_the_usage(priced):
    client, _ = client_with_api()
    job = make_job(client, transcription_provider="assemblyai", transcribed_seconds=60)
    data = json.loads(event_body(job, "job.completed"))["data"]
    assert set(data["usage"]) == USAGE_KEYS and data["usage"]["audio_seconds"] == 60.0
    job.webhook_payload = Job.WebhookPayload.THIN
    thin = json.loads(event_body(job, "job.failed"))["data"]
    assert "meeting" not in thin and thin["usage"] == data["usage"]


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_records_audio_and_tokens_and_prices_them(provider_settings, fake_aai):
    provider_settings.PRICE_TABLE = pricing.build({})
    provider_settings.OPENAI_MODEL = "gpt-4o-mini"
    provider_settings.OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = submit_job(Job(title="priced", audio=ContentFile(fh.read(), "a.wav")), enqueue=False)
    job = run_inline(job.id)
    assert job.status == Job.Status.COMPLETED, job.error_message
    assert job.transcribed_seconds == job.audio_duration_seconds > 0
    assert job.prompt_tokens > 0 and job.completion_tokens > 0 and job.embedding_tokens > 0
    transcription, analysis = _expected(
        str(round(job.transcribed_seconds, 3)), job.prompt_tokens, job.completion_tokens
    )
    embedding = (job.embedding_tokens * Decimal("0.02") / 1_000_000).quantize(Decimal("1e-8"))
    assert job.usage == {
        "audio_seconds": round(job.transcribed_seconds, 3),
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": job.completion_tokens,
        "embedding_tokens": job.embedding_tokens,
        "transcription_usd": float(transcription),
        "analysis_usd": float(analysis),
        "embedding_usd": float(embedding),
        "total_usd": float(transcription + analysis + embedding),
    }


def test_the_price_table_takes_overrides_model_by_model():
    table = pricing.build(
        {"analysis": {"openai": {"my-model": {"prompt_usd_per_1m": 1, "completion_usd_per_1m": 2}}}}
    )
    assert pricing.analysis_usd(table, "openai", "my-model", 1_000_000, 500_000) == Decimal("2")
    assert pricing.analysis_usd(table, "openai", "gpt-4o", 1_000_000, 0) == Decimal("2.5")
    assert pricing.transcription_usd(table, "local", "anything", 10_000) == 0


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        {"storage": {}},
        {"analysis": {"openai": {"x": {"prompt_usd_per_1m": "1"}}}},
        {"analysis": {"openai": {"x": {"prompt_usd_per_1m": "-1", "completion_usd_per_1m": 0}}}},
        {"transcription": {"openai": {"x": {"usd_per_hour": "cheap"}}}},
        {"transcription": {"openai": {"x": {"usd_per_hour": True}}}},
    ],
)
def test_a_malformed_price_table_is_refused_naming_the_setting(overrides):
    with pytest.raises(ImproperlyConfigured, match="PRICE_TABLE"):
        pricing.build(overrides)


def test_malformed_json_in_a_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_JSON_SETTING", '{"analysis": ')
    with pytest.raises(ImproperlyConfigured, match="SOME_JSON_SETTING must be valid JSON"):
        env.env_json("SOME_JSON_SETTING", {})
    monkeypatch.setenv("SOME_JSON_SETTING", '{"a": [1]}')
    assert env.env_json("SOME_JSON_SETTING", {}) == {"a": [1]}


def test_start_up_stops_on_a_bad_price_table_or_an_unpriced_model():
    result = manage_check(PRICE_TABLE="{not json")
    assert result.returncode != 0 and "PRICE_TABLE must be valid JSON" in result.stderr
    result = manage_check(
        ANALYSIS_PROVIDER="openai", OPENAI_API_KEY="sk-test", OPENAI_MODEL="gpt-9"
    )
    assert result.returncode != 0
    assert "PRICE_TABLE has no analysis price for openai model 'gpt-9'" in result.stderr


def _staff(*perms: str) -> User:
    user = User.objects.create_user(f"staff-{len(perms)}", password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.mark.django_db
def test_admin_shows_each_jobs_usage(priced, client):
    api_client, _ = client_with_api()
    job = make_job(api_client, transcription_provider="assemblyai", transcribed_seconds=3600)
    client.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
    page = client.get(f"/admin/jobs/job/{job.id}/change/").content.decode()
    assert "<th>total_usd</th><td>0.37</td>" in page and "priced now" in page
    assert "0.3700" in client.get("/admin/jobs/job/").content.decode()


@pytest.mark.django_db
def test_the_usage_page_charts_daily_cost_and_jobs_for_permitted_staff(priced, client):
    api_client, _ = client_with_api()
    for day, seconds in ((3, 3600), (3, 1800), (17, 7200)):
        job = make_job(api_client, transcription_provider="assemblyai", transcribed_seconds=seconds)
        Job.objects.filter(id=job.id).update(created_at=datetime(2026, 11, day, 12, tzinfo=UTC))
    make_job(api_client, transcription_provider="assemblyai", transcribed_seconds=99_999)
    url = f"/admin/usage/{api_client.pk}/?month=2026-11"

    client.force_login(_staff())
    assert client.get(url).status_code == 403
    client.force_login(_staff("view_apiclient", "view_job"))
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    chart = html[
        html.index('<svg class="usage-chart"') : html.index("</svg>", html.index("usage-chart"))
    ]
    assert "<script" not in chart
    # Only the admin's own static scripts: no chart library, nothing from another host.
    assert set(re.findall(r'<script[^>]*src="([^"]*)"', html)) <= {"/static/admin/js/theme.js"}
    assert "://" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', html)).replace(
        "http://www.w3.org/2000/svg", ""
    )
    assert html.count('<rect class="bar"') == 30  # one per day of November
    assert "Day 3: 0.5550 USD, 2 job(s)" in html and "Day 17: 0.7400 USD, 1 job(s)" in html
    assert '<strong id="usage-total">1.2950 USD</strong>' in html
    assert '<strong id="usage-jobs">3</strong>' in html
    assert client.get(f"/admin/usage/{api_client.pk}/?month=November").status_code == 404


@pytest.mark.django_db
def test_the_usage_index_lists_each_clients_month_for_permitted_staff(priced, client):
    api_client, _ = client_with_api("usage-index-client")
    make_job(api_client, transcription_provider="assemblyai", transcribed_seconds=3600)
    client.force_login(_staff("view_job"))
    assert client.get("/admin/usage/").status_code == 403
    client.force_login(_staff("view_apiclient", "view_job"))
    assert 'href="/admin/usage/"' in client.get("/admin/").content.decode()
    html = client.get("/admin/usage/").content.decode()
    assert f'<a href="/admin/usage/{api_client.pk}/">usage-index-client</a>' in html
    assert "<td>0.3700</td>" in html
