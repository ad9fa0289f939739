"""Provider selection: TRANSCRIPTION_PROVIDER and ANALYSIS_PROVIDER pick the module.

The analysis provider also picks the answerer of questions and the embedder
for search; every vendor module imports only the interfaces, never this
selection.

Every provider handed out is wrapped so its calls' latency, errors and
retries are measured (``instrumented.py``).
"""

from __future__ import annotations

from django.conf import settings

from jobs.providers.answering import Answerer
from jobs.providers.base import Analyzer, Transcriber
from jobs.providers.embedding import Embedder
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


def get_answerer() -> Answerer:
    if settings.ANALYSIS_PROVIDER == "openai":
        from jobs.providers.openai.answers import OpenAIAnswerer

        return OpenAIAnswerer()
    from jobs.providers.local.answers import ExtractiveAnswerer

    return ExtractiveAnswerer()


def get_embedder() -> Embedder:
    if settings.ANALYSIS_PROVIDER == "openai":
        from jobs.providers.openai.embeddings import OpenAIEmbedder

        return OpenAIEmbedder()
    from jobs.providers.local.embeddings import LocalEmbedder

    return LocalEmbedder()
