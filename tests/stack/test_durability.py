"""A crash, a restart or a flaky provider never loses a job, never pays twice.

These tests run their own stack (web, worker and beat from the Procfile) on a
Redis server they own, so they can kill workers, restart Redis and cut the
database without touching the shared services. Timeouts are scaled down: a
visibility timeout of 8 s, tasks limited to 3 s, a sweep every second.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import psycopg
import pytest
from django.db import connection

from jobs.models import Job, JobEvent
from tests.conftest import wait_until
from tests.support.outcomes import assert_each_completed_exactly_once, wait_all_terminal
from tests.support.stack import POSTGRES, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

needs_postgres = pytest.mark.skipif(
    not POSTGRES,
    reason="cuts and locks the PostgreSQL server; SQLite has none (CI runs PostgreSQL)",
)


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, fake_aai, fake_openai):
    with django_db_blocker.unblock():
        running = Stack(
            fake_aai,
            fake_openai,
            JOB_STALE_SECONDS="5",
            SWEEP_INTERVAL_SECONDS="1",
            JOB_MAX_RETRIES="6",
            JOB_MAX_REDELIVERIES="3",
            RATE_LIMIT_WINDOW_SECONDS="2",
            OPENAI_REQUESTS_PER_MINUTE="8",
            ANALYSIS_CONCURRENCY="1",
        )
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def workers(stack):
    stack.start_workers()
    yield
    stack.stop_workers()


def kill_worker(stack: Stack) -> None:
    stack.worker.kill()
    assert not stack.worker.alive()


def test_sigkill_during_the_transcription_wait(stack, api_key, receiver, fake_aai):
    fake_aai.processing_seconds = 4
    try:
        before = len(fake_aai.submissions)
        ids = stack.submit(api_key, receiver, 3)
        wait_until(
            lambda: Job.objects.filter(id__in=ids).exclude(transcript_external_id="").count() == 3
        )
        kill_worker(stack)
        stack.restart_worker()
        assert_each_completed_exactly_once(ids, receiver, fake_aai, before)
    finally:
        fake_aai.processing_seconds = 0


def test_sigkill_during_analysis(stack, api_key, receiver, fake_aai, fake_openai):
    fake_openai.delay_responses(2, times=None, route="chat")
    before, chats = len(fake_aai.submissions), len(fake_openai.request_times("chat"))
    ids = stack.submit(api_key, receiver, 2)
    wait_until(lambda: len(fake_openai.request_times("chat")) > chats)
    kill_worker(stack)
    assert Job.objects.filter(id__in=ids, stage="analyzing").exists()
    fake_openai.clear_faults()
    stack.restart_worker()
    assert_each_completed_exactly_once(ids, receiver, fake_aai, before)
    redelivered = Job.objects.filter(id__in=ids, redeliveries__gt=0).count()
    resumed = JobEvent.objects.filter(job_id__in=ids, message__startswith="Resumed").count()
    assert redelivered + resumed >= 1, "the killed step was picked up again"


@needs_postgres
def test_sigkill_while_saving_results(stack, api_key, receiver, fake_aai):
    db = connection.settings_dict
    before = len(fake_aai.submissions)
    with psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db.get("USER"),
        password=db.get("PASSWORD") or None,
        dbname=db["NAME"],
    ) as blocker:
        # Hold the segments table: the worker's transcript save blocks inside
        # its transaction, and is killed there.
        blocker.execute("LOCK TABLE meetings_segment IN SHARE MODE")
        ids = stack.submit(api_key, receiver, 2)

        def worker_waits_on_the_lock() -> bool:
            # Statistics are snapshotted per transaction: refresh them first.
            blocker.execute("SELECT pg_stat_clear_snapshot()")
            return (
                blocker.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()[0]
                > 0
            )

        wait_until(worker_waits_on_the_lock, timeout=30)
        kill_worker(stack)
        blocker.rollback()
    stack.restart_worker()
    assert_each_completed_exactly_once(ids, receiver, fake_aai, before)


def test_redis_restart_mid_flight_loses_no_job(stack, api_key, receiver, fake_aai):
    fake_aai.processing_seconds = 2
    before = len(fake_aai.submissions)
    ids = stack.submit(api_key, receiver, 3)
    wait_until(
        lambda: Job.objects.filter(id__in=ids).exclude(transcript_external_id="").count() == 3
    )
    # Celery's worker can exit on a broker restart (a kombu error while it closes
    # the dead connection); in production its supervisor starts it again.
    with stack.supervised() as restarted:
        stack.redis.restart()  # no persistence: every queued message is gone
        assert_each_completed_exactly_once(ids, receiver, fake_aai, before)
    print(f"restarted by the supervisor after the Redis restart: {restarted or 'nothing'}")


@needs_postgres
def test_a_database_outage_delays_but_loses_no_job(stack, api_key, receiver, fake_aai):
    fake_aai.processing_seconds = 1
    before = len(fake_aai.submissions)
    ids = stack.submit(api_key, receiver, 3)
    wait_until(
        lambda: Job.objects.filter(id__in=ids).exclude(transcript_external_id="").count() == 3
    )
    with stack.supervised():
        stack.proxy.cut()
        time.sleep(6)
        stack.proxy.restore()
        assert_each_completed_exactly_once(ids, receiver, fake_aai, before)


@needs_postgres
def test_four_30s_database_outages_in_one_analysis_still_complete_it(
    stack, api_key, receiver, fake_aai, fake_openai
):
    """Outages are the platform's, not the job's: Celery retries the step with
    backoff, and the job's own retries (JOB_MAX_RETRIES) stay untouched."""
    fake_openai.delay_responses(1, times=None, route="chat")
    before = len(fake_aai.submissions)
    try:
        with stack.supervised():
            [job_id] = stack.submit(api_key, receiver, 1)
            for _ in range(4):
                chats = len(fake_openai.request_times("chat"))
                wait_until(lambda n=chats: len(fake_openai.request_times("chat")) > n, timeout=90)
                assert Job.objects.get(id=job_id).stage == "analyzing"
                stack.proxy.cut()
                time.sleep(30)
                stack.proxy.restore()
            [job] = assert_each_completed_exactly_once([job_id], receiver, fake_aai, before)
    finally:
        fake_openai.clear_faults()
    assert job.step_retries == 0 and job.attempts == 1 and job.redeliveries == 0
    assert not JobEvent.objects.filter(job=job, status="retrying").exists()


def test_openai_requests_stay_under_the_global_limit(stack, api_key, receiver, fake_openai):
    start = time.monotonic()
    ids = stack.submit(api_key, receiver, 4)
    jobs = wait_all_terminal(ids)
    assert {j.status for j in jobs} == {"completed"}
    times = [t for t in fake_openai.request_times("chat") if t >= start]
    assert len(times) >= 16
    # The limiter is exact when requests are reserved; on their way to the fake
    # they pick up milliseconds of scheduling jitter, hence the 0.25 s margin.
    worst = max(sum(1 for t in times if s <= t < s + 1.75) for s in times)
    assert worst <= 8, f"{worst} requests within 1.75 s, limit 8 per 2 s"


def test_a_worker_that_keeps_dying_is_capped(stack, api_key, receiver, fake_aai):
    """Each delivery of the job's step kills its prefork child; Celery requeues it,
    and past JOB_MAX_REDELIVERIES the job fails instead of looping forever."""
    fake_aai.delay_responses(1.5, times=None, route="upload")
    try:
        uploads = len(fake_aai.request_times("upload"))
        [job_id] = stack.submit(api_key, receiver, 1)
        for attempt in range(1, 6):
            wait_until(
                lambda n=attempt: (
                    len(fake_aai.request_times("upload")) >= uploads + n
                    or Job.objects.get(id=job_id).is_terminal
                ),
                timeout=30,
            )
            if Job.objects.get(id=job_id).is_terminal:
                break
            for child in _children(stack.worker.pid):
                os.kill(child, signal.SIGKILL)
        job = wait_all_terminal([job_id])[0]
    finally:
        fake_aai.clear_faults()
    assert job.status == "failed" and job.error_code == "redelivery_limit"
    assert job.redeliveries == 4
    [hook] = receiver.wait_for(1)
    assert json.loads(hook.body)["type"] == "job.failed"


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            found += [int(p) for p in fh.read().split()]
    return found


def test_submissions_are_counted_per_job(fake_aai):
    """The fake counts submissions globally; jobs never share an upload."""
    urls = Counter(s["audio_url"] for s in fake_aai.submissions)
    assert all(n == 1 for n in urls.values())
