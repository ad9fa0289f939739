"""10. Recovery: every worker SIGKILLed while the jobs wait for AssemblyAI, then restarted.

Run with the settings the product ships with for everything recovery depends
on (visibility timeout, task time limit, JOB_STALE_SECONDS, JOB_LEASE_SECONDS,
sweep interval, poll cadence) and without AssemblyAI's completion callbacks,
so nothing but the platform's own recovery can bring the jobs back: the poll
messages the dead workers held stay unacknowledged in Redis for the 900 s
visibility timeout. The platform only: the original design has no recovery
of its own to compare (its jobs wait for the visibility timeout).
"""

from __future__ import annotations

import time

from django.db.models import Count
from django.utils import timezone

from bench.harness import Harness
from bench.processes import Service, start_platform_workers
from bench.report import Result, Row
from bench.runs import submit_platform, wait_done
from jobs.models import Job, JobEvent
from tests.support.platform import procfile_entries

GOAL_SECONDS = 120
SHIPPED = ("TRANSCRIPT_POLL_SECONDS", "TRANSCRIPT_POLL_MAX_SECONDS", "TRANSCRIPT_CALLBACKS")


def recovery(h: Harness) -> Result:
    s = h.sizes
    env = {k: v for k, v in h._env("worker").items() if k not in SHIPPED}
    env["TRANSCRIPT_CALLBACKS"] = "false"
    h.worker.stop()
    h.services["worker"] = start_platform_workers(env)
    beat = Service("beat", procfile_entries()["beat"], env)
    try:
        h.set_providers(s.s10_transcription_seconds, 0)
        before = len(h.aai.submissions)
        subs = submit_platform(h, s.s10_jobs, "s10")
        ids = [sub.job_id for sub in subs]
        deadline = time.monotonic() + 120
        while Job.objects.filter(id__in=ids, transcript_external_id="").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("s10: the jobs were not all submitted to AssemblyAI in 120 s")
            time.sleep(0.2)
        h.worker.kill()
        killed = timezone.now()
        h.services["worker"] = start_platform_workers(env)
        jobs = wait_done(subs, timeout=900)
    finally:
        beat.stop()
        h.worker.stop()
        h.services["worker"] = start_platform_workers(h._env("worker"))
    resumed = [(j.transcript_saved_at - killed).total_seconds() for j in jobs]
    completions = (
        JobEvent.objects.filter(job_id__in=ids, status=Job.Status.COMPLETED)
        .values("job_id")
        .annotate(n=Count("id"))
    )
    once = sum(1 for row in completions if row["n"] == 1)
    submissions = (len(h.aai.submissions) - before) / len(ids)
    return Result(
        10,
        "Recovery after every worker is SIGKILLed mid-wait",
        [
            Row("seconds until the last job resumed", max(resumed)),
            Row("jobs completed exactly once (of all)", once / len(ids), better="higher"),
            Row("AssemblyAI submissions per job", submissions),
        ],
        [
            f"{s.s10_jobs} jobs, transcription {s.s10_transcription_seconds:g} s, no completion "
            "callbacks; the workers (prefork and threads) were SIGKILLed once every job had "
            "submitted its audio and restarted at once, beat kept running. Shipped recovery "
            f"settings. Goals: last job resumed within {GOAL_SECONDS} s, every job completed "
            "exactly once, 1.00 submission per job. 'Resumed' is when the job's transcript "
            "was saved after the kill.",
        ],
        {"resumed_seconds": sorted(resumed), "submissions_per_job": submissions},
    )
