"""What the pipeline asks of a provider, independent of any vendor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from meetings.transcript import Transcript

_paid_request_guard: ContextVar[Callable[[], None] | None] = ContextVar(
    "paid_request_guard", default=None
)


def before_paid_request() -> None:
    """Providers call this right before each paid request they send.

    It runs the guard the pipeline set for the current call (see `guarded`),
    which raises JobLost when the job was cancelled or handed to another step.
    """
    guard = _paid_request_guard.get()
    if guard is not None:
        guard()


@contextmanager
def guarded(guard: Callable[[], None]) -> Iterator[None]:
    """Run `guard` before every paid request made inside this block (this thread)."""
    token = _paid_request_guard.set(guard)
    try:
        yield
    finally:
        _paid_request_guard.reset(token)


@dataclass(frozen=True)
class AudioSource:
    path: Path
    language: str = ""
    speakers_expected: int | None = None
    # Names and terms to spell this way (AssemblyAI keyterms, Whisper's prompt).
    vocabulary: tuple[str, ...] = ()
    callback_url: str = ""
    callback_header: tuple[str, str] | None = None


@dataclass(frozen=True)
class Participant:
    name: str
    role: str = ""


@dataclass(frozen=True)
class Section:
    """One extra structured result a template asks for."""

    key: str
    title: str
    instructions: str = ""


@dataclass(frozen=True)
class AnalysisContext:
    """What the client shaped about a job's analysis (SPEC "Shaping the analysis").

    Everything here is data from the client: providers pass it to the model
    apart from their own instructions, never as instructions of their own.
    """

    instructions: str = ""
    sections: tuple[Section, ...] = ()
    participants: tuple[Participant, ...] = ()
    vocabulary: tuple[str, ...] = ()
    # BCP 47 code of the language to write in; blank: the transcript's.
    output_language: str = ""

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)


NO_CONTEXT = AnalysisContext()


@dataclass
class StepOutput:
    data: dict[str, Any]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    notes: list[str] = field(default_factory=list)


class Transcriber(Protocol):
    """Turns audio into speaker turns.

    `submit` returns either the finished Transcript (synchronous engines) or
    the provider's id of a transcript still being made, to `fetch` later.
    `fetch` returns None while the provider is still working.
    """

    name: str

    def submit(self, audio: AudioSource) -> Transcript | str: ...

    def fetch(self, external_id: str) -> Transcript | None: ...


class Analyzer(Protocol):
    """Runs one analysis step over a transcript and returns its validated data."""

    name: str

    def run(
        self, step: str, transcript: Transcript, context: AnalysisContext = NO_CONTEXT
    ) -> StepOutput: ...
