"""The analysis steps: what each asks for, and the shape its answer must have.

Each step is optional: when one fails the others still land and the meeting
lists it under `degraded`. Answers are validated with these models whatever
the provider, so a server that ignores `strict` cannot slip bad data in.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpeakerName(_Strict):
    label: str
    name: str | None


class SpeakerNames(_Strict):
    speakers: list[SpeakerName]


class Summary(_Strict):
    summary: str


class ActionItemOut(_Strict):
    text: str
    owner: str | None
    due_date: str | None
    source_start_ms: int | None


class ActionItems(_Strict):
    action_items: list[ActionItemOut]


class DecisionOut(_Strict):
    text: str
    source_start_ms: int | None


class Decisions(_Strict):
    decisions: list[DecisionOut]


STEPS: dict[str, type[_Strict]] = {
    "speaker_names": SpeakerNames,
    "summary": Summary,
    "action_items": ActionItems,
    "decisions": Decisions,
}

PROMPTS: dict[str, str] = {
    "speaker_names": (
        "You identify the speakers of a meeting transcript. Each line is "
        "'[start_ms] LABEL: text'. For every label, give the person's name when the "
        "conversation reveals it (someone addresses them or they introduce "
        "themselves); otherwise null. Never invent names."
    ),
    "summary": (
        "Summarise the meeting transcript in one to three short paragraphs: the "
        "purpose, the main points discussed and the outcome. Each line is "
        "'[start_ms] LABEL: text'."
    ),
    "action_items": (
        "List the action items agreed in the meeting transcript: what must be done, "
        "the owner (the speaker label or name) if stated, the due date as YYYY-MM-DD "
        "if stated, and source_start_ms, the [start_ms] of the line it comes from. "
        "Each line is '[start_ms] LABEL: text'. Return an empty list if there are none."
    ),
    "decisions": (
        "List the decisions the meeting reached, with source_start_ms, the "
        "[start_ms] of the line where each was made. Each line is "
        "'[start_ms] LABEL: text'. Return an empty list if there are none."
    ),
}


ANALYSIS_STEPS = tuple(STEPS)
STEP_LABELS = {
    "speaker_names": "Speaker names",
    "summary": "Summary",
    "action_items": "Action items",
    "decisions": "Decisions",
}


def pending_analysis(job: Any) -> list[str]:
    """The job's analysis steps that have neither landed nor failed."""
    settled = set(job.analysis_steps_done) | set(job.analysis_steps_failed)
    return [step for step in ANALYSIS_STEPS if step not in settled]


def json_schema(step: str) -> dict[str, Any]:
    """The strict JSON schema of a step's answer (every property required)."""
    return STEPS[step].model_json_schema()


def validate(step: str, raw: str | dict[str, Any]) -> dict[str, Any]:
    """Validate a provider's answer; raises pydantic.ValidationError."""
    model = STEPS[step]
    parsed = model.model_validate_json(raw) if isinstance(raw, str) else model.model_validate(raw)
    return parsed.model_dump()
