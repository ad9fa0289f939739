"""Model answers made safe to save: the boundary every analysis step's answer crosses.

A schema-valid answer can still be hostile to the database or the reader:
timestamps far past the meeting (or past PostgreSQL's integer range), NUL
and other control characters (jsonb and text columns refuse NUL), lone
surrogates, pages of text, the same item listed a dozen times, owners who
were never in the meeting. ``clean`` fixes each of these the same way for
every provider, before an answer is checkpointed or saved.

Each step's cleaner is registered in ``CLEANERS``; a new step registers its
own with ``cleaner("step")`` and builds it from the helpers here
(``text``, ``timestamp``, ``dedupe``, ``owner``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs.providers.analysis_steps import match_participant
from meetings.transcript import Transcript

SUMMARY_MAX_CHARS = 20_000
ITEM_MAX_CHARS = 2_000
NAME_MAX_CHARS = 120
LABEL_MAX_CHARS = 16
DATE_MAX_CHARS = 32
ITEMS_MAX = 200

# C0 controls but tab and newline, DEL, C1 controls; and lone surrogates.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|[\ud800-\udfff]")
_SPACES = re.compile(r"[ \t]+")


@dataclass
class AnswerContext:
    """What an answer is checked against: the meeting's length and its people."""

    duration_ms: int
    speaker_names: dict[str, str] = field(default_factory=dict)  # label -> name ("" unknown)
    spoken_text: str = ""  # the transcript, casefolded, where people are named
    participants: list[str] = field(default_factory=list)  # names given with the job

    @classmethod
    def of(
        cls,
        transcript: Transcript,
        names: dict[str, str] | None = None,
        participants: list[str] | None = None,
    ) -> AnswerContext:
        ends = [u.end_ms for u in transcript.utterances]
        duration = int((transcript.duration_seconds or 0) * 1000) or max(ends, default=0)
        labels = {u.speaker for u in transcript.utterances}
        return cls(
            duration_ms=max(duration, max(ends, default=0)),
            speaker_names={label: (names or {}).get(label, "") for label in labels},
            spoken_text=" ".join(u.text for u in transcript.utterances).casefold(),
            participants=list(participants or []),
        )


def text(value: Any, limit: int = ITEM_MAX_CHARS) -> str:
    """`value` as plain text: no control characters or lone surrogates, trimmed, capped."""
    if not isinstance(value, str):
        return ""
    cleaned = unicodedata.normalize("NFC", _CONTROL.sub("", value))
    cleaned = "\n".join(_SPACES.sub(" ", line).strip() for line in cleaned.splitlines()).strip()
    return cleaned[:limit].rstrip()


def timestamp(value: Any, context: AnswerContext) -> int | None:
    """A millisecond offset inside the meeting: negative or non-integer → None, past the end → the end."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return min(value, context.duration_ms)


def _key(value: str) -> str:
    return " ".join(value.casefold().split())


def dedupe(items: list[dict[str, Any]], key: str = "text") -> list[dict[str, Any]]:
    """Items in order without repeats of the same (case- and space-insensitive) `key`."""
    seen: set[str] = set()
    kept = []
    for item in items:
        marker = _key(item[key])
        if marker and marker not in seen:
            seen.add(marker)
            kept.append(item)
    return kept[:ITEMS_MAX]


def owner(value: Any, context: AnswerContext) -> str:
    """The owner as a person of the meeting, or "" when it names no one there.

    A speaker label becomes that speaker's name when it is known; a name is
    kept when it is a speaker's name, a participant's (a first or last name
    of exactly one participant becomes their name as listed), or spoken in
    the meeting.
    """
    name = text(value, NAME_MAX_CHARS)
    if not name:
        return ""
    if name in context.speaker_names:
        return context.speaker_names[name] or name
    wanted = _key(name)
    for known in [*context.speaker_names.values(), *context.participants]:
        if known and _key(known) == wanted:
            return known
    # "Bob" for the one participant called "Bob Jones", as they were listed.
    if participant := match_participant(name, context.participants):
        return participant
    if re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", context.spoken_text):
        return name
    return ""


def owner_label(value: Any, context: AnswerContext) -> str:
    """The label of the one speaker `value` names (by label, or by a name no other
    speaker has), or "": a rename then moves only that speaker's items."""
    name = text(value, NAME_MAX_CHARS)
    if name in context.speaker_names:
        return name
    wanted = _key(name)
    named = [
        label for label, known in context.speaker_names.items() if known and _key(known) == wanted
    ]
    return named[0] if len(named) == 1 else ""


Cleaner = Callable[[dict[str, Any], AnswerContext], dict[str, Any]]
CLEANERS: dict[str, Cleaner] = {}


def cleaner(step: str) -> Callable[[Cleaner], Cleaner]:
    def register(fn: Cleaner) -> Cleaner:
        CLEANERS[step] = fn
        return fn

    return register


def clean(step: str, data: dict[str, Any], context: AnswerContext) -> dict[str, Any]:
    """The answer of `step` made safe to save (a new dict; `data` is left alone).

    Every template section ("section:<key>") shares the "section" cleaner.
    """
    return CLEANERS["section" if step.startswith("section:") else step](data, context)


@cleaner("speaker_names")
def _speaker_names(data: dict[str, Any], context: AnswerContext) -> dict[str, Any]:
    seen: set[str] = set()
    speakers = []
    for entry in data["speakers"]:
        label = text(entry.get("label"), LABEL_MAX_CHARS)
        if label in seen or (context.speaker_names and label not in context.speaker_names):
            continue
        seen.add(label)
        speakers.append({"label": label, "name": text(entry.get("name"), NAME_MAX_CHARS) or None})
    return {"speakers": speakers}


@cleaner("summary")
def _summary(data: dict[str, Any], context: AnswerContext) -> dict[str, Any]:
    return {"summary": text(data["summary"], SUMMARY_MAX_CHARS)}


@cleaner("action_items")
def _action_items(data: dict[str, Any], context: AnswerContext) -> dict[str, Any]:
    items = [
        {
            "text": text(item.get("text")),
            "owner": owner(item.get("owner"), context) or None,
            "owner_label": owner_label(item.get("owner"), context),
            "due_date": text(item.get("due_date"), DATE_MAX_CHARS) or None,
            "source_start_ms": timestamp(item.get("source_start_ms"), context),
        }
        for item in data["action_items"]
    ]
    return {"action_items": dedupe(items)}


@cleaner("decisions")
def _decisions(data: dict[str, Any], context: AnswerContext) -> dict[str, Any]:
    items = [
        {
            "text": text(item.get("text")),
            "source_start_ms": timestamp(item.get("source_start_ms"), context),
        }
        for item in data["decisions"]
    ]
    return {"decisions": dedupe(items)}


@cleaner("section")
def _section(data: dict[str, Any], context: AnswerContext) -> dict[str, Any]:
    items = [
        {
            "text": text(item.get("text")),
            "source_start_ms": timestamp(item.get("source_start_ms"), context),
        }
        for item in data["items"]
    ]
    return {"items": dedupe(items)}
