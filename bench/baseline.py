"""The original design, as a small stand-in: one blocking Celery task per job.

The task uploads and submits the audio to AssemblyAI and polls it inside the
task (the SDK's ``transcribe()``, every 3 s, its default), asks OpenAI for the
four analyses one after another, then saves the meeting with the platform's
own save functions. It is its own Celery app, configured from the platform's
CELERY_* settings (acks late, prefetch 1, results in the database) on its
own broker (the harness points CELERY_BROKER_URL at another Redis database),
and runs with concurrency 2:

    celery -A bench.baseline worker -Q celery --concurrency 2 --pool prefork -E

So against the same fake providers and database only the orchestration differs.
"""

from __future__ import annotations

import os
from typing import Any

import assemblyai as aai
import openai
from celery import Celery
from django.conf import settings

from jobs.providers import analysis_steps as analysis
from meetings.transcript import Transcript, Utterance

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meeting_intel.settings")

app = Celery("bench_baseline")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.task(name="bench.baseline.process_job")
def process_job(job_id: str) -> None:
    _run(job_id)


def _run(job_id: str) -> None:
    # Imported here: the worker imports this module before Django is set up.
    from django.db import transaction
    from django.utils import timezone

    from jobs.models import Job
    from jobs.state import fail_job, update_job
    from meetings.results import save_step, save_transcript

    job = Job.objects.get(id=job_id)
    update_job(
        job,
        "Transcribing",
        status=Job.Status.PROCESSING,
        stage=Job.Stage.TRANSCRIBING,
        started_at=timezone.now(),
    )
    try:
        transcript = _transcribe(job.audio.path)
        update_job(job, "Analyzing", stage=Job.Stage.ANALYZING)
        results = _analyze(transcript)
        with transaction.atomic():
            meeting = save_transcript(job, transcript, "assemblyai")
            for step, data in results.items():
                save_step(meeting, step, data)
            update_job(
                job,
                "Completed",
                status=Job.Status.COMPLETED,
                stage=Job.Stage.DONE,
                progress=100,
                completed_at=timezone.now(),
            )
    except Exception as exc:
        fail_job(job, "baseline_error", f"{type(exc).__name__}: {exc}")
        raise


def _transcribe(path: str) -> Transcript:
    """Upload, submit and wait: the SDK polls AssemblyAI while this worker slot waits."""
    client = aai.Client(
        settings=aai.Settings(
            api_key=settings.ASSEMBLYAI_API_KEY,
            base_url=settings.ASSEMBLYAI_BASE_URL,
            http_timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        )
    )
    result = aai.Transcriber(client=client).transcribe(
        path, aai.TranscriptionConfig(speaker_labels=True)
    )
    if result.status != aai.TranscriptStatus.completed:
        raise RuntimeError(f"transcription failed: {result.error}")
    return Transcript(
        utterances=[
            Utterance(str(u.speaker), u.start, u.end, u.text) for u in result.utterances or []
        ],
        duration_seconds=result.audio_duration,
    )


def _analyze(transcript: Transcript) -> dict[str, dict[str, Any]]:
    """The four analysis calls, one after another, each on the whole transcript."""
    client = openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT_SECONDS,
        max_retries=0,
    )
    prompt = transcript.as_prompt()
    results: dict[str, dict[str, Any]] = {}
    for step in analysis.STEPS:
        completion = client.chat.completions.create(
            model=settings.OPENAI_MODEL,
            messages=[
                {"role": "system", "content": analysis.PROMPTS[step]},
                {"role": "user", "content": prompt},
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": step,
                    "schema": analysis.json_schema(step),
                    "strict": True,
                },
            },
        )
        results[step] = analysis.validate(step, completion.choices[0].message.content or "")
    return results
