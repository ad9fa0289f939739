"""Answers through the analysis model (``OPENAI_MODEL``) with Structured Outputs.

The prompt holds only the retrieved passages; the model must cite the ids it
used and say when they do not answer the question. Takes its share of the
fleet-wide request and token budgets as it is sent, like every analysis call
(jobs.providers.openai.client).
"""

from __future__ import annotations

import openai
from django.conf import settings
from pydantic import ValidationError

from jobs.errors import TransientError
from jobs.providers.answering import NOT_FOUND, Answer, AnswerOut, Source, clock
from jobs.providers.openai.chat import repair_json
from jobs.providers.openai.client import client
from jobs.providers.openai.errors import translate

SYSTEM = (
    "You answer questions about meetings using only the numbered passages given, which are "
    "excerpts of meeting transcripts. Cite in passage_ids the ids of every passage your "
    "answer rests on. If the passages do not contain the answer, set answerable to false, "
    "say so briefly in answer, and cite nothing. Never use outside knowledge."
)


def prompt(question: str, sources: list[Source]) -> str:
    lines = [f"Question: {question}", "", "Passages:"]
    lines += [
        f"[{s.id}] ({s.title}, {clock(s.start_ms)}, {s.speaker_name or 'unknown'}) {s.text}"
        for s in sources
    ]
    return "\n".join(lines)


class OpenAIAnswerer:
    name = "openai"

    def __init__(self) -> None:
        self._client = client(settings.OPENAI_TIMEOUT_SECONDS)

    def answer(self, question: str, sources: list[Source]) -> Answer:
        if not sources:
            return Answer(NOT_FOUND, [], answerable=False)
        content = prompt(question, sources)
        try:
            completion = self._client.chat.completions.create(
                model=settings.OPENAI_MODEL,
                messages=[
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": content},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": "meeting_answer",
                        "schema": AnswerOut.model_json_schema(),
                        "strict": True,
                    },
                },
            )
        except openai.APIError as exc:
            raise translate(exc, "answer_rejected") from exc
        choice = completion.choices[0]
        if choice.message.refusal:
            return Answer(choice.message.refusal, [], answerable=False)
        try:
            out = AnswerOut.model_validate_json(repair_json(choice.message.content or ""))
        except (ValidationError, ValueError) as exc:
            raise TransientError(
                "answer_invalid", f"The model's answer was malformed: {exc}"
            ) from exc
        usage = completion.usage
        return Answer(
            out.answer.strip() or NOT_FOUND,
            list(dict.fromkeys(out.passage_ids)) if out.answerable else [],
            answerable=out.answerable,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )
