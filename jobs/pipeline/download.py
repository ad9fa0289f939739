"""Fetching a job's `audio_url` in the worker, before transcription.

The download goes through the shared SSRF guard (``meeting_intel.lib.safe_http``): every
hop, redirects included, must resolve to a public address (unless
WEBHOOK_ALLOW_PRIVATE_HOSTS), the checked IP is the one connected to, the
body is capped at UPLOAD_MAX_BYTES and the whole fetch has a deadline. The
file then passes the same content check as an upload and is saved as the
job's audio: a checkpoint, so a retry or a reprocess never downloads again.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.files import File

from jobs.errors import JobLost, PermanentError, TransientError
from jobs.models import Job
from jobs.state import update_job
from meeting_intel.lib.media import MediaProblem, inspect_media, safe_filename
from meeting_intel.lib.safe_http import DeadlineExceeded, FetchError, UnsafeURL, safe_request

logger = logging.getLogger(__name__)

USER_AGENT = "MeetingIntel-Fetch/1.0"


def _filename(url: str) -> str:
    return safe_filename(unquote(urlsplit(url).path.rsplit("/", 1)[-1]), default="audio")


def _download(url: str, sink: IO[bytes]) -> str:
    """Fetch `url` into `sink`; the final URL after redirects."""
    try:
        response = safe_request(
            "GET",
            url,
            timeout=settings.AUDIO_URL_TIMEOUT_SECONDS,
            max_bytes=settings.UPLOAD_MAX_BYTES,
            headers={"user-agent": USER_AGENT, "accept": "audio/*, video/*, */*"},
            allow_redirects=True,
            sink=sink,
        )
    except UnsafeURL as exc:
        if exc.transient:
            raise TransientError("audio_url_unresolvable", f"audio_url: {exc.reason}") from None
        raise PermanentError(
            "audio_url_refused", f"audio_url is not allowed: {exc.reason}"
        ) from None
    except DeadlineExceeded:
        raise TransientError(
            "audio_url_timeout",
            f"Downloading audio_url took over {settings.AUDIO_URL_TIMEOUT_SECONDS:.0f} s",
        ) from None
    except FetchError as exc:
        raise TransientError(
            "audio_url_unreachable", f"Could not download audio_url: {exc}"
        ) from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientError("audio_url_unavailable", f"audio_url answered HTTP {status}")
    if not response.ok:
        raise PermanentError("audio_url_http_error", f"audio_url answered HTTP {status}")
    if response.truncated:
        raise PermanentError(
            "file_too_large", f"The file at audio_url exceeds {settings.UPLOAD_MAX_BYTES} bytes"
        )
    return response.url


def fetch_audio(job: Job, task_id: str) -> Job:
    """Download `job.audio_url`, check it is media, and save it as `job.audio`.

    Raises PermanentError for a refused URL, an HTTP error, an oversized or
    non-media file; TransientError for network trouble (retried); JobLost if
    the job changed meanwhile. Returns the updated job.
    """
    update_job(
        job,
        "Downloading the recording from audio_url",
        holder=task_id,
        stage=Job.Stage.TRANSCRIBING,
    )
    with tempfile.NamedTemporaryFile(suffix=".download") as sink:
        final_url = _download(job.audio_url, sink)
        sink.flush()
        path = Path(sink.name)
        try:
            info = inspect_media(path)
        except MediaProblem as problem:
            raise PermanentError(problem.code, f"audio_url: {problem.message}") from None
        name = _filename(final_url)
        size = path.stat().st_size
        sink.seek(0)
        # Saved before taking the row lock: copying a large file must not hold it.
        stored = job.audio.storage.save(
            job.audio.field.generate_filename(job, name), File(sink, name=name)
        )
    try:
        update_job(
            job,
            f"Recording downloaded ({size / 1e6:.1f} MB)",
            holder=task_id,
            audio=stored,
            original_filename=name,
            audio_bytes=size,
            audio_duration_seconds=info.duration_seconds,
        )
    except JobLost:
        job.audio.storage.delete(stored)
        raise
    return job
