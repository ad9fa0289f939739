"""Providers wrapped so every call is measured (see meeting_intel.ops.metrics).

The wrappers change nothing a caller sees: same results, same exceptions,
and every other attribute passes through to the provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from jobs.errors import PermanentError, TransientError
from jobs.providers.base import (
    NO_CONTEXT,
    AnalysisContext,
    Analyzer,
    AudioSource,
    StepOutput,
    Transcriber,
)
from meetings.transcript import Transcript

T = TypeVar("T")


def error_kind(error: BaseException) -> str:
    """How a failed call is counted: transient (retried), permanent, or unexpected."""
    if isinstance(error, TransientError):
        return "transient"
    if isinstance(error, PermanentError):
        return "permanent"
    return "unexpected"


class _Measured:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)

    def _measure(self, operation: str, call: Callable[[], T]) -> T:
        from meeting_intel.ops.metrics import observe_provider_call

        started = time.perf_counter()
        try:
            result = call()
        except Exception as exc:
            observe_provider_call(
                self.name, operation, time.perf_counter() - started, error_kind(exc)
            )
            raise
        observe_provider_call(self.name, operation, time.perf_counter() - started, None)
        return result


class MeasuredTranscriber(_Measured):
    """`operation` is submit or fetch."""

    def submit(self, audio: AudioSource) -> Transcript | str:
        return self._measure("submit", lambda: self._inner.submit(audio))

    def fetch(self, external_id: str) -> Transcript | None:
        return self._measure("fetch", lambda: self._inner.fetch(external_id))


class MeasuredAnalyzer(_Measured):
    """`operation` is the analysis step (summary, action_items, ...; every template
    section counts as "section", so clients' keys never become metric labels)."""

    def run(
        self, step: str, transcript: Transcript, context: AnalysisContext = NO_CONTEXT
    ) -> StepOutput:
        operation = "section" if step.startswith("section:") else step
        return self._measure(operation, lambda: self._inner.run(step, transcript, context))


def measured_transcriber(inner: Transcriber) -> Transcriber:
    return MeasuredTranscriber(inner)  # type: ignore[return-value]


def measured_analyzer(inner: Analyzer) -> Analyzer:
    return MeasuredAnalyzer(inner)  # type: ignore[return-value]
