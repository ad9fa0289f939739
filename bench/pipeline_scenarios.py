"""Scenarios 1–3: jobs through both designs, from upload to results.

Times come from the jobs' own `created_at` / `completed_at` (written by the
web process and the workers) and the bench's clock: one machine, one clock.
"""

from __future__ import annotations

import math
import time

from django.utils import timezone

from bench.harness import POLL_MAX_SECONDS, POLL_SECONDS, Harness
from bench.report import Result, Row, percentile
from bench.runs import peak_in_flight, submit_baseline, submit_platform, wait_done

VOCABULARY = (
    "we need to ship the billing page before the release so let us review what is left and who owns "
    "each part of the plan including tests docs budget and customer updates for next week"
).split()


def throughput(h: Harness) -> Result:
    """1. Many jobs at once against a slow provider: jobs per minute and jobs in flight."""
    s = h.sizes
    transcription, llm = s.s1_transcription_seconds, s.s1_llm_seconds
    h.set_providers(transcription, llm)
    runs = {
        "platform": (submit_platform, s.s1_jobs),
        "baseline": (submit_baseline, s.s1_baseline_jobs),
    }
    # Seconds before giving up: every LLM call on the two slots; the baseline also polls every 3 s.
    budgets = {
        "platform": transcription + s.s1_jobs * 4 * llm / 2,
        "baseline": math.ceil(s.s1_baseline_jobs / 2) * (transcription + 3 + 4 * llm),
    }
    measured = {}
    for design, (submit, count) in runs.items():
        subs = submit(h, count, f"s1 {design}")
        jobs = wait_done(subs, timeout=120 + 2 * budgets[design])
        elapsed = (max(j.completed_at for j in jobs) - min(x.at for x in subs)).total_seconds()
        measured[design] = {
            "jobs": count,
            "seconds": elapsed,
            "jobs_per_minute": count / elapsed * 60,
            "peak_in_flight": peak_in_flight(jobs),
        }
    platform, baseline = measured["platform"], measured["baseline"]
    all_jobs = s.s1_jobs / baseline["jobs_per_minute"] * 60
    scaled = baseline["jobs"] < s.s1_jobs
    return Result(
        1,
        "Throughput, slow provider",
        [
            Row(
                "jobs per minute",
                platform["jobs_per_minute"],
                baseline["jobs_per_minute"],
                "higher",
            ),
            Row(
                "jobs in flight at the peak",
                platform["peak_in_flight"],
                baseline["peak_in_flight"],
                "higher",
            ),
            Row(f"minutes to finish {s.s1_jobs} jobs", platform["seconds"] / 60, all_jobs / 60),
        ],
        [
            f"Transcription {transcription:g} s, each LLM call {llm:g} s; {s.s1_jobs} jobs submitted at once "
            "to one worker with concurrency 2. The platform polls every "
            f"{POLL_SECONDS}→{POLL_MAX_SECONDS} s with AssemblyAI completion callbacks on. Timed from the "
            "first submission to the last completion: the platform's time includes its uploads through "
            "the API; the baseline's jobs are inserted directly.",
            (
                f"Scaled: the baseline ran {baseline['jobs']} of the {s.s1_jobs} jobs "
                f"({math.ceil(baseline['jobs'] / 2)} rounds of its 2 slots; each job holds a slot "
                "throughout, so its rate is the same for any batch). Its time for all "
                f"{s.s1_jobs} is that rate extrapolated; BENCH_FULL=1 runs all {s.s1_jobs}."
            )
            if scaled
            else f"Both designs ran all {s.s1_jobs} jobs.",
        ],
        measured,
    )


def latency(h: Harness) -> Result:
    """2. One job at a time against its physical limit: overhead at p50 and p95."""
    s = h.sizes
    transcription, llm = s.s2_transcription_seconds, s.s2_llm_seconds
    limit = transcription + llm
    h.set_providers(transcription, llm)
    overheads: dict[str, list[float]] = {}
    for design, submit in (("platform", submit_platform), ("baseline", submit_baseline)):
        overheads[design] = []
        for pair in range(s.s2_jobs // 2):
            for job in wait_done(
                submit(h, 2, f"s2 {design} {pair}"), timeout=60 + 4 * (limit + 4 * llm)
            ):
                overheads[design].append(
                    (job.completed_at - job.created_at).total_seconds() - limit
                )
    p50 = {d: percentile(v, 50) for d, v in overheads.items()}
    p95 = {d: percentile(v, 95) for d, v in overheads.items()}
    return Result(
        2,
        "Latency of one job",
        [
            Row("latency p50 (s)", p50["platform"] + limit, p50["baseline"] + limit),
            Row("overhead over the limit, p50 (s)", p50["platform"], p50["baseline"]),
            Row("overhead over the limit, p95 (s)", p95["platform"], p95["baseline"]),
        ],
        [
            f"Limit = transcription {transcription:g} s + the slowest single LLM call {llm:g} s = {limit:g} s. "
            f"{s.s2_jobs} jobs per design, submitted two at a time (one per worker slot, so nothing queues), "
            "timed from the job's creation (its upload received and stored) to its completion; "
            "the upload itself is in scenario 3.",
            "Scaled from scenario 1's 30 s / 2 s to keep the run short; BENCH_FULL=1 uses 30 s / 2 s."
            if not s.full
            else "Same provider latencies as scenario 1.",
        ],
        {"limit_seconds": limit, "overheads": overheads},
    )


def one_hour_script(utterances: int, words: int) -> list[tuple[str, str]]:
    """A deterministic meeting of `utterances` turns of `words` words, four speakers."""
    return [
        (
            "ABCD"[i % 4],
            " ".join(VOCABULARY[(i * 7 + k * 3) % len(VOCABULARY)] for k in range(words)),
        )
        for i in range(utterances)
    ]


def cost(h: Harness) -> Result:
    """3. Orchestration cost with instant providers: CPU, queries and jobs per second."""
    s = h.sizes
    n = s.s3_jobs
    h.set_providers(0, 0, one_hour_script(s.s3_utterances, s.s3_words_per_utterance))
    time.sleep(POLL_SECONDS + 1)  # let earlier jobs' last scheduled polls run out

    # Platform: uploads with the worker frozen, so the web's share is measured apart.
    web0, worker0 = _usage(h, "web"), _usage(h, "worker")
    h.worker.pause()
    started = time.monotonic()
    try:
        subs = submit_platform(h, n, "s3 platform")
    finally:
        h.worker.resume()
    upload_seconds = time.monotonic() - started
    upload = _delta(_usage(h, "web"), web0)
    resumed, calls0 = timezone.now(), _chat_calls(h)
    jobs = wait_done(subs, timeout=600)
    platform_seconds = (max(j.completed_at for j in jobs) - resumed).total_seconds()
    platform_calls = _chat_calls(h) - calls0
    time.sleep(POLL_SECONDS + 1)  # the jobs' own trailing (no-op) polls are part of their cost
    web, worker = _delta(_usage(h, "web"), web0), _delta(_usage(h, "worker"), worker0)

    # Baseline: its upload endpoint is the same as the platform's, so it is charged the same upload.
    base0, started_at, calls0 = _usage(h, "baseline"), timezone.now(), _chat_calls(h)
    jobs = wait_done(submit_baseline(h, n, "s3 baseline"), timeout=600)
    baseline_seconds = (max(j.completed_at for j in jobs) - started_at).total_seconds()
    baseline_calls = _chat_calls(h) - calls0
    time.sleep(POLL_SECONDS + 1)
    base = _delta(_usage(h, "baseline"), base0)

    def per_job(usage: tuple[float, int], i: int) -> float:
        return usage[i] / n

    return Result(
        3,
        "Orchestration cost, instant providers",
        [
            Row(
                "CPU ms per job, web + worker",
                per_job(web, 0) + per_job(worker, 0),
                per_job(upload, 0) + per_job(base, 0),
            ),
            Row("CPU ms per job, worker only", per_job(worker, 0), per_job(base, 0)),
            Row(
                "DB queries per job",
                per_job(web, 1) + per_job(worker, 1),
                per_job(upload, 1) + per_job(base, 1),
            ),
            Row(
                "jobs per second",
                n / (upload_seconds + platform_seconds),
                n / (upload_seconds + baseline_seconds),
                "higher",
            ),
        ],
        [
            f"{n} one-hour meetings ({s.s3_utterances} utterances, "
            f"{s.s3_utterances * s.s3_words_per_utterance:,} words) per design, submitted at once; "
            "providers answer at once. CPU is user + system time of the process trees (uvicorn; "
            "Celery parent and prefork children); queries are every SQL statement they ran.",
            f"Both designs are charged the same upload through the API: {per_job(upload, 0):.0f} ms CPU, "
            f"{per_job(upload, 1):.0f} queries and {upload_seconds / n * 1000:.0f} ms per job, measured "
            "on the platform's web process with its worker paused.",
            f"LLM calls per job: platform {platform_calls / n:g} (long transcripts are analysed in chunks), "
            f"baseline {baseline_calls / n:g} (one call per step on the whole transcript).",
        ],
        {
            "upload": {"cpu_ms": upload[0], "queries": upload[1], "seconds": upload_seconds},
            "platform": {
                "web_cpu_ms": web[0],
                "web_queries": web[1],
                "worker_cpu_ms": worker[0],
                "worker_queries": worker[1],
                "seconds": platform_seconds,
                "llm_calls": platform_calls,
            },
            "baseline": {
                "worker_cpu_ms": base[0],
                "worker_queries": base[1],
                "seconds": baseline_seconds,
                "llm_calls": baseline_calls,
            },
        },
    )


def _chat_calls(h: Harness) -> int:
    return len(h.openai.request_times("chat"))


def _usage(h: Harness, service: str) -> tuple[float, int]:
    """(CPU milliseconds, SQL statements) of a service so far."""
    return h.services[service].cpu_seconds() * 1000, h.queries(service)


def _delta(after: tuple[float, int], before: tuple[float, int]) -> tuple[float, int]:
    return after[0] - before[0], after[1] - before[1]
