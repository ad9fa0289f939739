"""The spoken script both fake providers "recognise", and its word timings.

A script is a sequence of ``(speaker_label, text)`` turns. Timings are
derived from word counts so that they are deterministic: every word lasts
``ms_per_word`` milliseconds, and turns are separated by ``gap_ms`` of silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Script = Sequence[tuple[str, str]]

DEFAULT_MEETING: tuple[tuple[str, str], ...] = (
    (
        "A",
        "Good morning Bob, thanks for joining. Let's review the launch plan for the new billing page.",
    ),
    ("B", "Thanks Alice. The design is finished and the backend work is almost done."),
    ("A", "Great. What is the status of the payment provider integration?"),
    ("B", "It works in staging. I still need to write up the test results."),
    ("A", "Okay, so Bob will send the report by Friday. We decided to ship on Monday."),
    ("B", "Agreed. Alice will ask Carol to update the customer documentation before the release."),
)
"""A two-speaker meeting (A is Alice, B is Bob) with names, an action item and a decision."""

LEAD_IN_MS = 200
"""Silence before the first word."""

TAIL_MS = 800
"""Silence after the last word, counted in the audio duration."""


@dataclass(frozen=True)
class TimedWord:
    """One word as spoken, punctuation attached, times in milliseconds."""

    text: str
    start: int
    end: int
    speaker: str


@dataclass(frozen=True)
class TimedTurn:
    """One speaker turn (an utterance), times in milliseconds."""

    speaker: str
    text: str
    start: int
    end: int
    words: tuple[TimedWord, ...]


def time_script(script: Script, *, ms_per_word: int = 300, gap_ms: int = 700) -> list[TimedTurn]:
    """Lay ``script`` out on a time line; turns with no words are dropped."""
    turns: list[TimedTurn] = []
    cursor = LEAD_IN_MS
    for speaker, text in script:
        words: list[TimedWord] = []
        for token in text.split():
            words.append(TimedWord(token, cursor, cursor + ms_per_word, speaker))
            cursor += ms_per_word
        if words:
            turns.append(
                TimedTurn(
                    speaker, " ".join(w.text for w in words), words[0].start, cursor, tuple(words)
                )
            )
            cursor += gap_ms
    return turns


def duration_ms(turns: Sequence[TimedTurn]) -> int:
    """Length of the recording that ``turns`` were laid out on, in milliseconds."""
    return (turns[-1].end if turns else LEAD_IN_MS) + TAIL_MS


# Answers of the analysis steps that match DEFAULT_MEETING (FakeOpenAI's `responses`).
CANNED = {
    "speaker_names": {"speakers": [{"label": "A", "name": "Alice"}, {"label": "B", "name": "Bob"}]},
    "summary": {"summary": "Alice and Bob planned the release and agreed to ship on Monday."},
    "action_items": {
        "action_items": [
            {
                "text": "Send the report",
                "owner": "Bob",
                "due_date": "2026-11-27",
                "source_start_ms": 0,
            }
        ]
    },
    "decisions": {"decisions": [{"text": "Ship on Monday", "source_start_ms": 0}]},
}
