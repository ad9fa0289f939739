"""Submitting jobs to either design and waiting for them (needs Django set up)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import requests
from django.core.files.base import ContentFile
from django.db.models import Count
from django.utils import timezone

from bench.audio import small_wav
from bench.baseline import process_job
from bench.harness import Harness
from jobs.models import Job

WAV = small_wav()


@dataclass(frozen=True)
class Submission:
    job_id: str
    at: datetime


def submit_platform(h: Harness, count: int, title: str) -> list[Submission]:
    """POST `count` jobs to the platform's API at once (four connections at a time)."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda i: _post_job(h, f"{title} {i}"), range(count)))


def _post_job(h: Harness, title: str) -> Submission:
    at = timezone.now()
    response = requests.post(
        f"{h.web_url}/api/v1/jobs/",
        headers={"Authorization": f"Bearer {h.api_key}"},
        files={"audio": ("meeting.wav", WAV, "audio/wav")},
        data={"title": title},
        timeout=120,
    )
    if response.status_code != 201:
        raise RuntimeError(f"job submission failed: {response.status_code} {response.text[:500]}")
    return Submission(response.json()["id"], at)


def submit_baseline(h: Harness, count: int, title: str) -> list[Submission]:
    """Create `count` jobs, as the original upload endpoint did, and queue one baseline task each."""
    submitted = []
    for i in range(count):
        at = timezone.now()
        job = Job.objects.create(
            client_id=h.client_id,
            title=f"{title} {i}",
            audio=ContentFile(WAV, name="meeting.wav"),
            original_filename="meeting.wav",
            audio_bytes=len(WAV),
        )
        process_job.delay(str(job.id))
        submitted.append(Submission(str(job.id), at))
    return submitted


def wait_done(submissions: list[Submission], timeout: float) -> list[Job]:
    """Wait until every job is terminal and return them; raise unless all completed."""
    ids = [s.job_id for s in submissions]
    deadline = time.monotonic() + timeout
    while Job.objects.filter(id__in=ids).exclude(status__in=Job.TERMINAL).exists():
        if time.monotonic() > deadline:
            rows = Job.objects.filter(id__in=ids).values("status", "stage").annotate(n=Count("id"))
            states = {f"{r['status']}/{r['stage']}": r["n"] for r in rows}
            raise TimeoutError(f"jobs still running after {timeout:.0f}s: {states}")
        time.sleep(0.25)
    jobs = list(Job.objects.filter(id__in=ids))
    failed = [j for j in jobs if j.status != Job.Status.COMPLETED]
    if failed:
        raise RuntimeError(
            f"{len(failed)} jobs did not complete, e.g. {failed[0].id}: {failed[0].error}"
        )
    return jobs


def peak_in_flight(jobs: list[Job]) -> int:
    """Most jobs started and not yet completed at one instant."""
    edges = sorted([(j.started_at, 1) for j in jobs] + [(j.completed_at, -1) for j in jobs])
    peak = running = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak
