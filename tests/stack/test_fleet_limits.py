"""Provider limits hold where the provider counts them: at the fake servers.

Four analysis worker processes share one fleet-wide window in Redis (the
shipped 60 s). Every request is admitted as it is sent and counts until a
window after its answer, so the second asks that malformed answers cause are
counted too, and a loaded host that delivers a request late cannot push two
windows' worth into one minute at the provider. Transcriptions hold one of
ASSEMBLYAI_MAX_CONCURRENT slots from submission until their transcript is in.

The scaled-down task limits of tests.support.stack (3 s) are raised here:
on a loaded machine a prefork child's first import of an SDK takes longer."""

from __future__ import annotations

import time

import pytest

from tests.support.outcomes import wait_all_terminal
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WORKERS, JOBS = 4, 12  # 12 jobs ask for about 53 chat answers: more than one window's worth
REQUESTS, TOKENS = 40, 12_000  # about 215 tokens an answer: both bind
ROOMY = {"CELERY_VISIBILITY_TIMEOUT": "60", "TASK_SOFT_TIME_LIMIT": "20"}


@pytest.fixture
def openai_stack(django_db_blocker, fake_aai, fake_openai):
    with django_db_blocker.unblock():
        running = Stack(
            fake_aai,
            fake_openai,
            OPENAI_REQUESTS_PER_MINUTE=str(REQUESTS),
            OPENAI_TOKENS_PER_MINUTE=str(TOKENS),
            **ROOMY,
        )
    try:
        running.start_workers()
        running.start_more_workers(WORKERS - 1, entries=("worker-analysis",))
        yield running
    finally:
        running.stop()


@pytest.mark.timeout(400)
def test_four_worker_processes_never_send_more_than_the_limits_in_a_minute(
    openai_stack, api_key, receiver, fake_openai
):
    start = time.monotonic()
    fake_openai.corrupt_json("summary", "truncated", times=5)  # cut-off answers: second asks
    try:
        ids = openai_stack.submit(api_key, receiver, JOBS)
        jobs = wait_all_terminal(ids, timeout=300)
    finally:
        fake_openai.clear_faults()
    assert {j.status for j in jobs} == {"completed"}, [(j.status, j.error_message) for j in jobs]
    times = sorted(t for t in fake_openai.request_times("chat") if t >= start)
    assert len(times) > JOBS * 4, "the second asks reached the provider too"
    assert times[-1] - times[0] > 60, "the load crossed a window boundary"
    requests = fake_openai.max_requests_in_window(60, route="chat", since=start)
    tokens = fake_openai.max_tokens_in_window(60, route="chat", since=start)
    print(
        f"{len(times)} chat requests from {WORKERS} processes over {times[-1] - times[0]:.0f} s; "
        f"at most {requests} (limit {REQUESTS}) and {tokens} tokens (limit {TOKENS}) in a minute"
    )
    assert requests == REQUESTS, "the limit is reached, never passed"
    assert tokens <= TOKENS


SLOTS = 2


@pytest.fixture
def transcription_stack(django_db_blocker, fake_aai, fake_openai):
    with django_db_blocker.unblock():
        running = Stack(fake_aai, fake_openai, ASSEMBLYAI_MAX_CONCURRENT=str(SLOTS), **ROOMY)
    try:
        running.start_workers()
        running.start_more_workers(1, entries=("worker",))  # four prefork processes in all
        yield running
    finally:
        running.stop()


def test_worker_processes_never_hold_more_transcriptions_than_the_slots(
    transcription_stack, api_key, receiver, fake_aai
):
    start = time.monotonic()
    fake_aai.processing_seconds = 3
    ids = transcription_stack.submit(api_key, receiver, 2 * SLOTS)
    jobs = wait_all_terminal(ids, timeout=90)
    assert {j.status for j in jobs} == {"completed"}, [(j.status, j.error_message) for j in jobs]
    assert fake_aai.max_concurrent_transcriptions_since(start) == SLOTS
