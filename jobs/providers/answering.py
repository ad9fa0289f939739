"""Answering a question from retrieved meeting passages (``POST /api/v1/ask/``).

The answerer sees only the passages retrieval found, each under an id
(``P1``, ``P2``…), and names the ids its answer rests on; the caller checks
every cited id against what it retrieved. OpenAI answers through the
analysis model with Structured Outputs when the analysis provider is
``openai``; offline, the answer is extractive: the best passages themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Source:
    """One retrieved passage as the answerer sees it."""

    id: str
    title: str
    start_ms: int
    speaker_name: str
    text: str
    keyword_match: bool = False
    similarity: float | None = None


@dataclass
class Answer:
    text: str
    cited: list[str]
    answerable: bool
    extractive: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    notes: list[str] = field(default_factory=list)


class AnswerOut(BaseModel):
    """The shape the model must answer in (strict JSON schema)."""

    model_config = ConfigDict(extra="forbid")
    answerable: bool
    answer: str
    passage_ids: list[str]


NOT_FOUND = "The meetings searched do not say: no passage answers this question."


def clock(ms: int) -> str:
    """H:MM:SS, how a moment in a meeting is written for people and models."""
    seconds = ms // 1000
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Answerer(Protocol):
    name: str

    def answer(self, question: str, sources: list[Source]) -> Answer: ...
