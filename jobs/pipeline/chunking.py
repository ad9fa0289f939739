"""Splitting long transcripts by a token budget, and merging per-chunk answers.

Every utterance lands in exactly one chunk (an utterance longer than the
budget is split by words), so nothing is silently truncated.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from meetings.transcript import Transcript, Utterance, estimate_tokens, prompt_line


def _split_long(u: Utterance, budget: int) -> list[Utterance]:
    words = u.text.split()
    pieces: list[list[str]] = [[]]
    for word in words:
        if pieces[-1] and estimate_tokens(" ".join([*pieces[-1], word])) + 8 > budget:
            pieces.append([])
        pieces[-1].append(word)
    span = max(1, u.end_ms - u.start_ms)
    total = max(1, len(words))
    out, done = [], 0
    for piece in pieces:
        start = u.start_ms + span * done // total
        done += len(piece)
        out.append(Utterance(u.speaker, start, u.start_ms + span * done // total, " ".join(piece)))
    return out


def split(transcript: Transcript, budget: int) -> list[Transcript]:
    """Consecutive chunks whose prompt lines each fit in `budget` tokens."""
    chunks: list[list[Utterance]] = [[]]
    size = 0
    for utterance in transcript.utterances:
        for u in (
            _split_long(utterance, budget)
            if estimate_tokens(prompt_line(utterance)) > budget
            else [utterance]
        ):
            tokens = estimate_tokens(prompt_line(u)) + 1
            if chunks[-1] and size + tokens > budget:
                chunks.append([])
                size = 0
            chunks[-1].append(u)
            size += tokens
    return [
        Transcript(
            utterances=c, language=transcript.language, duration_seconds=transcript.duration_seconds
        )
        for c in chunks
        if c
    ]


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _dedupe(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for item in items:
        key = _normal(item["text"])
        if key and key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def merge(step: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine chunk answers of `step` (in chunk order). The summary is merged by the caller."""
    if step == "speaker_names":
        votes: dict[str, Counter[str]] = {}
        for part in parts:
            for entry in part["speakers"]:
                votes.setdefault(entry["label"], Counter())
                if entry.get("name"):
                    votes[entry["label"]][entry["name"]] += 1
        return {
            "speakers": [
                {"label": label, "name": names.most_common(1)[0][0] if names else None}
                for label, names in sorted(votes.items())
            ]
        }
    if step in ("action_items", "decisions"):
        return {step: _dedupe([item for part in parts for item in part[step]])}
    if step.startswith("section:"):
        return {"items": _dedupe([item for part in parts for item in part["items"]])}
    raise ValueError(f"{step} is not merged item by item")


def summaries_as_transcript(summaries: list[str]) -> Transcript:
    """Chunk summaries as the input of a final summary call."""
    return Transcript(
        utterances=[
            Utterance(f"Part {i + 1} summary", i, i, text) for i, text in enumerate(summaries)
        ]
    )
