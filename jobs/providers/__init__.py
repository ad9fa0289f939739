"""Provider selection: TRANSCRIPTION_PROVIDER and ANALYSIS_PROVIDER pick the module."""

from __future__ import annotations

from django.conf import settings

from .base import Analyzer, Transcriber


def get_transcriber(name: str | None = None) -> Transcriber:
    """The configured transcriber, or the one named (the one a job started with)."""
    name = name or settings.TRANSCRIPTION_PROVIDER
    if name == "assemblyai":
        from .assemblyai import AssemblyAITranscriber

        return AssemblyAITranscriber()
    if name == "openai":
        from .openai_audio import OpenAITranscriber

        return OpenAITranscriber()
    if name == "local":
        from .local_transcription import LocalTranscriber

        return LocalTranscriber()
    raise ValueError(f"unknown transcription provider {name!r}")


def get_analyzer() -> Analyzer:
    if settings.ANALYSIS_PROVIDER == "openai":
        from .openai_chat import OpenAIAnalyzer

        return OpenAIAnalyzer()
    from .local_analysis import LocalAnalyzer

    return LocalAnalyzer()
