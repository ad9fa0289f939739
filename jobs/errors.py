"""The two kinds of failure the pipeline knows.

Providers translate their SDKs' exceptions into these at the boundary, so the
pipeline never inspects vendor types: transient errors are retried with
backoff, permanent ones fail the step (or the job) at once.
"""

from __future__ import annotations


class PipelineError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientError(PipelineError):
    """Worth retrying later: timeouts, connection errors, 429, 5xx."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class PermanentError(PipelineError):
    """Retrying cannot help: bad credentials, rejected audio, no speech."""


class JobLost(Exception):
    """The job was cancelled, finished, or claimed by another task meanwhile."""


class Deferred(Exception):
    """Not an error: the step must wait (a shared rate limit, a full slot pool).

    The step is rescheduled after `seconds` without using up a retry.
    """

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


class AudioMissing(Exception):
    """Reprocessing from transcription needs the recording, and it is gone (purged)."""
