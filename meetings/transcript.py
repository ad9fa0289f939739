"""A transcript as the pipeline passes it around: speaker turns, and the one line format prompts use.

Providers produce it, the meeting's segments store it, and analysis reads
it back as prompt lines (``[start_ms] speaker: text``) whose start times a
model cites back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Utterance:
    speaker: str
    start_ms: int
    end_ms: int
    text: str


def prompt_line(u: Utterance) -> str:
    """One turn as a prompt line, with the start time the model cites back."""
    return f"[{u.start_ms}] {u.speaker}: {u.text}"


def estimate_tokens(text: str) -> int:
    """About four characters a token for English: cheap and close enough for budgets."""
    return len(text) // 4 + 1


@dataclass(frozen=True)
class Transcript:
    utterances: list[Utterance]
    language: str = ""
    duration_seconds: float | None = None
    # Set when the provider was asked to detect the language and named one.
    detected_language: str = ""

    def as_prompt(self) -> str:
        """One line per turn (``prompt_line``)."""
        return "\n".join(prompt_line(u) for u in self.utterances)
