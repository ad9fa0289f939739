"""Offline answers: the best retrieved passages themselves, marked as extractive.

A passage counts as relevant when it matched the question's words or its
embedding is close enough (``MIN_SIMILARITY``, chosen on all-MiniLM-L6-v2,
whose unrelated sentence pairs mostly score under 0.2); with none relevant,
the answer says the meetings do not tell.
"""

from __future__ import annotations

from jobs.providers.answering import NOT_FOUND, Answer, Source, clock

MIN_SIMILARITY = 0.3
MAX_QUOTED = 3


class ExtractiveAnswerer:
    name = "local"

    def answer(self, question: str, sources: list[Source]) -> Answer:
        relevant = [
            s
            for s in sources
            if s.keyword_match or (s.similarity is not None and s.similarity >= MIN_SIMILARITY)
        ][:MAX_QUOTED]
        if not relevant:
            return Answer(NOT_FOUND, [], answerable=False, extractive=True)
        quoted = "\n".join(
            f"- {s.title}, {clock(s.start_ms)}, {s.speaker_name or 'unknown speaker'}: “{s.text}”"
            for s in relevant
        )
        text = f"Extractive answer (no language model was asked); the most relevant passages:\n{quoted}"
        return Answer(text, [s.id for s in relevant], answerable=True, extractive=True)
