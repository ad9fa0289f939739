"""The search index is a pipeline step: checkpointed, retried, degradable, redone by
reprocess, and removed with the audio (the transcript stays searchable by keyword)."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from jobs.actions import reprocess_job, submit_job
from jobs.errors import Deferred
from jobs.models import Job
from jobs.pipeline.runner import run_inline
from jobs.providers import get_embedder
from jobs.retention import purge_expired_audio
from meetings.models import Meeting, Passage
from meetings.search import hybrid, keyword
from meetings.search.query import Filters
from tests.conftest import SAMPLE_AUDIO

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = [
    ("A", "Good morning everyone, welcome to the quarterly planning meeting."),
    ("B", "The marketing budget for the spring campaign needs another review."),
    ("A", "We also agreed to hire two backend engineers before the summer."),
    ("B", "Let us book the flights and the hotel for the offsite in Lisbon."),
]


@pytest.fixture
def scripted(provider_settings, fake_aai):
    fake_aai.utterances = SCRIPT
    return provider_settings


def run_job() -> Job:
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = submit_job(
            Job(title="Planning", audio=ContentFile(fh.read(), "a.wav")), enqueue=False
        )
    return run_inline(job.id)


def found(meeting: Meeting, text: str, mode: str = "semantic") -> list:
    embedder = get_embedder()

    def embed(q: str):
        return embedder.name, embedder.embed([q]).vectors[0]

    return hybrid.search(Meeting.objects.filter(id=meeting.id), text, mode, Filters(), embed).hits


def test_a_finished_job_is_searchable_by_meaning_with_openai_embeddings(scripted, fake_openai):
    before = len(fake_openai.request_times("embeddings"))
    job = run_job()
    assert job.status == "completed" and job.search_index == "done"
    meeting = job.meeting
    assert meeting.degraded == [] and meeting.search_indexed_at is not None
    stored = list(meeting.passages.all())
    assert stored and {p.model for p in stored} == {"openai:text-embedding-3-small"}
    # Passages cover every segment once, in order, with their time range.
    covered = [i for p in stored for i in range(p.first_segment, p.last_segment + 1)]
    assert covered == list(range(meeting.segments.count()))
    assert stored[0].start_ms == meeting.segments.first().start_ms
    # One batched request for the whole meeting, its tokens counted on the job.
    assert len(fake_openai.request_times("embeddings")) == before + 1
    assert job.embedding_tokens > 0
    assert job.events.filter(message__startswith="Search index ready").exists()
    assert found(meeting, "flights hotel offsite")[0].meeting_id == str(meeting.id)


def test_offline_the_index_uses_the_bundled_model(scripted):
    scripted.ANALYSIS_PROVIDER = "local"
    job = run_job()
    assert job.search_index == "done"
    assert {p.model for p in job.meeting.passages.all()} == {"local:all-MiniLM-L6-v2"}
    hits = found(job.meeting, "travel arrangements for the team trip")
    assert "Lisbon" in hits[0].text


def test_a_refused_embedding_request_degrades_search_only(scripted, fake_openai):
    fake_openai.fail(400, times=None, route="embeddings")
    job = run_job()
    assert job.status == "completed" and job.search_index == "failed"
    assert job.meeting.degraded == ["search_index"]
    assert job.meeting.summary  # the analysis still landed
    assert not job.meeting.passages.exists()
    # The transcript is still found by its words.
    page = keyword.search(Meeting.objects.all(), "marketing budget", Filters())
    assert page.total == 1 and page.hits[0].meeting_id == str(job.meeting.id)


def test_a_transient_embedding_failure_is_retried(scripted, fake_openai):
    scripted.JOB_MAX_RETRIES = 3
    fake_openai.fail(503, times=2, route="embeddings")
    job = run_job()
    assert job.status == "completed" and job.search_index == "done"
    assert job.meeting.degraded == [] and job.meeting.passages.exists()
    assert list(job.events.values_list("status", flat=True)).count("retrying") == 2


def test_a_lasting_outage_degrades_search_after_the_retries(scripted, fake_openai):
    scripted.JOB_MAX_RETRIES = 2
    fake_openai.fail(503, times=None, route="embeddings")
    job = run_job()
    assert job.status == "completed" and job.meeting.degraded == ["search_index"]
    assert list(job.events.values_list("status", flat=True)).count("retrying") == 2


def test_reprocess_rebuilds_the_index(scripted):
    job = run_job()
    old = set(job.meeting.passages.values_list("id", flat=True))
    assert reprocess_job(job, "analysis")
    job = run_inline(job.id)
    assert job.status == "completed" and job.search_index == "done"
    new = set(job.meeting.passages.values_list("id", flat=True))
    assert new and not old & new


def test_purging_the_audio_removes_the_index_but_not_the_keyword_search(scripted):
    scripted.AUDIO_RETENTION_DAYS = 30
    job = run_job()
    Job.objects.filter(id=job.id).update(completed_at=timezone.now() - timedelta(days=31))
    assert purge_expired_audio() == 1
    meeting = Meeting.objects.get(id=job.meeting.id)
    assert not meeting.passages.exists() and meeting.search_indexed_at is None
    assert found(meeting, "flights hotel offsite") == []
    assert found(meeting, "flights hotel", mode="keyword")[0].meeting_id == str(meeting.id)


def test_deleting_the_meeting_removes_everything_searchable(scripted):
    job = run_job()
    meeting_id = job.meeting.id
    job.delete()
    assert not Passage.objects.filter(meeting_id=meeting_id).exists()
    assert keyword.search(Meeting.objects.all(), "marketing budget", Filters()).total == 0


def test_embedding_requests_take_their_share_of_the_global_limiter(provider_settings, fake_openai):
    provider_settings.OPENAI_EMBEDDING_MODEL = f"text-embedding-limit-{uuid.uuid4().hex[:8]}"
    provider_settings.OPENAI_EMBEDDING_REQUESTS_PER_MINUTE = 1
    before = len(fake_openai.request_times("embeddings"))
    with pytest.raises(Deferred):
        get_embedder().embed([f"text {i}" for i in range(300)])  # two batches, one allowed
    assert len(fake_openai.request_times("embeddings")) == before + 1


def test_search_reindex_builds_a_missing_or_degraded_index(scripted, fake_openai):
    fake_openai.fail(400, times=None, route="embeddings")
    job = run_job()
    assert job.meeting.degraded == ["search_index"]
    fake_openai.clear_faults()
    out = io.StringIO()
    call_command("search_reindex", stdout=out)
    meeting = Meeting.objects.get(id=job.meeting.id)
    assert meeting.passages.exists() and meeting.degraded == []
    assert Job.objects.get(id=job.id).search_index == "done"
    assert "Indexed 1 meetings" in out.getvalue()
    call_command("search_reindex", stdout=out)  # nothing left without an index
    assert "Indexed 0 meetings" in out.getvalue()
