"""Provider selection: TRANSCRIPTION_PROVIDER and ANALYSIS_PROVIDER pick the module.

Every provider handed out is wrapped so its calls' latency, errors and
retries are measured (``instrumented.py``).
"""

from __future__ import annotations

from django.conf import settings

from jobs.providers.base import Analyzer, Transcriber
from jobs.providers.instrumented import measured_analyzer, measured_transcriber


def get_transcriber(name: str | None = None) -> Transcriber:
    """The configured transcriber, or the one named (the one a job started with)."""
    return measured_transcriber(_transcriber(name or settings.TRANSCRIPTION_PROVIDER))


def get_analyzer() -> Analyzer:
    return measured_analyzer(_analyzer())


def _transcriber(name: str) -> Transcriber:
    if name == "assemblyai":
        from jobs.providers.assemblyai import AssemblyAITranscriber

        return AssemblyAITranscriber()
    if name == "openai":
        from jobs.providers.openai.audio import OpenAITranscriber

        return OpenAITranscriber()
    if name == "local":
        from jobs.providers.local.transcription import LocalTranscriber

        return LocalTranscriber()
    raise ValueError(f"unknown transcription provider {name!r}")


def _analyzer() -> Analyzer:
    if settings.ANALYSIS_PROVIDER == "openai":
        from jobs.providers.openai.chat import OpenAIAnalyzer

        return OpenAIAnalyzer()
    from jobs.providers.local.analysis import LocalAnalyzer

    return LocalAnalyzer()
