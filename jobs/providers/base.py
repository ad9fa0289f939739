"""What the pipeline asks of a provider, independent of any vendor."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from meetings.transcript import Transcript


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
