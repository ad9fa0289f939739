"""Provider selection: TRANSCRIPTION_PROVIDER and ANALYSIS_PROVIDER pick the module.

The analysis provider also picks the answerer of questions and the embedder
for search; every vendor module imports only the interfaces, never this
selection.

Every provider handed out is wrapped so its calls' latency, errors and
retries are measured (``instrumented.py``). Providers are built once per
process and reused by every task (their SDK clients keep their connection
pools and parsed schemas); a change of the settings they are built from
builds a new one.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings

from jobs.providers.answering import Answerer
from jobs.providers.base import Analyzer, Transcriber
from jobs.providers.embedding import Embedder
from jobs.providers.instrumented import measured_analyzer, measured_transcriber
from meeting_intel.lib import pricing

_BUILT_FROM = (
    "ASSEMBLYAI_API_KEY",
    "ASSEMBLYAI_BASE_URL",
    "PROVIDER_TIMEOUT_SECONDS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_EMBEDDING_MODEL",
    "OPENAI_TIMEOUT_SECONDS",
    "OPENAI_TRANSCRIPTION_MODEL",
    "OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS",
)
_lock = threading.Lock()
_built: dict[tuple[Any, ...], Any] = {}


def _reused(kind: str, name: str, build: Callable[[], Any]) -> Any:
    key = (kind, name, os.getpid(), *(getattr(settings, s) for s in _BUILT_FROM))
    with _lock:
        if key not in _built:
            if len(_built) > 16:  # settings changed many times (tests): start afresh
                _built.clear()
            _built[key] = build()
        return _built[key]


def forget_built() -> None:
    """Drop the reused providers, and what they learned of their servers (the tests
    call it after each test, so one test's server never shapes the next's calls)."""
    with _lock:
        _built.clear()


def get_transcriber(name: str | None = None) -> Transcriber:
    """The configured transcriber, or the one named (the one a job started with)."""
    name = name or settings.TRANSCRIPTION_PROVIDER
    return _reused("transcriber", name, lambda: measured_transcriber(_transcriber(name)))


def get_analyzer() -> Analyzer:
    name = settings.ANALYSIS_PROVIDER
    return _reused("analyzer", name, lambda: measured_analyzer(_analyzer()))


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
    name = pricing.embedding_provider(settings.ANALYSIS_PROVIDER)
    return _reused("embedder", name, lambda: _embedder(name))


def _embedder(name: str) -> Embedder:
    if name == "openai":
        from jobs.providers.openai.embeddings import OpenAIEmbedder

        return OpenAIEmbedder()
    from jobs.providers.local.embeddings import LocalEmbedder

    return LocalEmbedder()


def preload() -> None:
    """Import the configured providers' modules and SDKs now (nothing is built).

    A worker calls it once in its main process before it starts its pool, so
    prefork children inherit the imports instead of each paying for them in
    its first task (the SDKs take about a second of CPU to import). The
    local models are left to load where they are used.
    """
    # With each SDK, the connection library its HTTP client imports only when
    # the first client is built (httpcore for AssemblyAI's httpx, httpcore2 for
    # OpenAI's httpx2): about 25 ms a child otherwise.
    modules = {
        "assemblyai": ["jobs.providers.assemblyai", "httpcore"],
        "openai": ["jobs.providers.openai.audio", "httpcore2"],
    }.get(settings.TRANSCRIPTION_PROVIDER, [])
    if settings.ANALYSIS_PROVIDER == "openai":
        modules += ["jobs.providers.openai.chat", "httpcore2"]
    if pricing.embedding_provider(settings.ANALYSIS_PROVIDER) == "openai":
        modules += ["jobs.providers.openai.embeddings", "httpcore2"]
    for module in modules:
        importlib.import_module(module)
