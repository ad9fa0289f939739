"""Offline analysis: deterministic English rules, no model and no network.

For deployments without an OpenAI key. Each step reads the transcript's
sentences and returns data that `analysis.validate` accepts. Offline results
are marked in one place each: every StepOutput carries
notes=["offline analyzer"] (for the pipeline to record), and the summary, read
on its own, starts with "[Offline summary]". Action items and decisions keep
clean text; the meeting's analysis provider ("local") says where they came from.

- speaker_names: self-introductions ("I'm Alice", "I am Alice", "my name is
  Bob", "this is Carol", "it's Dan", "Carol here") name the speaker;
  "thanks, Bob" names the previous other speaker, and "Bob, can you ..." or
  "over to you, Bob" the next one. A name must be capitalised and not a
  common word. A self-introduction beats being addressed; a label with
  conflicting evidence, or a name two labels claim, stays null.
- summary: the three sentences with the highest word-frequency score (how
  common their content words are across the meeting, damped by length),
  in spoken order, each after its speaker's name.
- action_items: commitments ("I'll", "I will", "I'm going to", "X will"),
  requests ("can you", "could you", "please"), obligations ("needs to",
  "have to", "must"). Owner: the speaker for "I" (their name when
  speaker_names finds it, else the label), the named person for "X will" or
  "Bob, can you", else null. Due date from due_dates. A request
  and its acceptance ("Sure, I will ...") are one item, kept at the request.
  Sentences about running the meeting itself are not tasks.
- decisions: "we decided", "we agreed", "agreed", "let's go with", "the
  decision is", "we'll go with"; a bare "Agreed." adopts the previous
  speaker's last sentence.
- sections (a template's): the sentences sharing a content word (by its
  first five letters, so "risk" finds "risky") with the section's title or
  instructions, at most SECTION_ITEMS of them.
Shaping (SPEC "Shaping the analysis"): with known participants, a name found
in the transcript counts only when it is one of theirs (a first name picks
the one participant it belongs to), and owners are given as listed; terms of
the vocabulary are re-spelled as listed in every text. Output in a language
other than English is refused with PermanentError("language_unsupported"),
so those steps degrade instead of answering in the wrong language.
Limits: English only; names need capital letters (engines that emit lower
case get none); no coreference ("she will", "they'll" have no owner).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from jobs.errors import PermanentError
from jobs.providers import analysis_steps as analysis
from jobs.providers.base import NO_CONTEXT, AnalysisContext, StepOutput
from jobs.providers.local.due_dates import MONTHS, WEEKDAYS, find_due_date
from meetings.transcript import Transcript

NOTES = ["offline analyzer"]
SUMMARY_PREFIX = "[Offline summary]"
SUMMARY_SENTENCES = 3
SECTION_ITEMS = 10

# Capitalised words that start sentences or follow "I'm" but are not names.
_COMMON_WORDS = [
    "i", "we", "you", "they", "he", "she", "it", "this", "that", "the", "a", "an", "and",
    "but", "so", "or", "yes", "no", "not", "sure", "ok", "okay", "hi", "hello", "hey",
    "thanks", "everyone", "everybody", "all", "team", "guys", "folks", "here", "there",
    "just", "still", "also", "really", "going", "sorry", "good", "great", "fine", "happy",
    "glad", "back", "done", "ready", "afraid", "excited", "working", "looking", "trying",
    "today", "tomorrow", "yesterday", "tonight", "well", "right", "now", "then", "what",
    "who", "how", "why", "when", "where", "let", "can", "could", "would", "will", "should",
    "please", "maybe", "actually",
]  # fmt: skip
_NOT_NAMES = {w.capitalize() for w in _COMMON_WORDS + WEEKDAYS + MONTHS}
_NAME = r"([A-Z][a-z]+(?:-[A-Z][a-z]+)?)"
# The name must end its phrase ("I'm Alice, ...", "I'm Alice and ..."), which
# keeps "I'm Alice's manager" and "this is Bob's draft" out.
_SELF_INTRO = re.compile(
    rf"\b(?:I'm|I am|[Mm]y name is|[Tt]his is|[Ii]t's)\s+{_NAME}"
    r"(?=[,.!?;:]|\s+(?:and|here|speaking|from)\b|$)"
    rf"|^{_NAME}\s+here\b"
)
_THANKS = re.compile(rf"\b(?:[Tt]hanks|[Tt]hank you|[Cc]heers)[,!]?\s+{_NAME}\b")
_REQUEST_TO = re.compile(rf"\b{_NAME},?\s+(?:[Cc]an|[Cc]ould|[Ww]ould|[Ww]ill) you\b")
_OVER_TO = re.compile(rf"\b(?:over to you|your turn|go ahead)[,]?\s+{_NAME}\b")

_FILLER = re.compile(
    r"^(?:(?:so|ok|okay|sure|yes|yeah|right|great|well|and|also|alright|agreed|good)\b[,.!]?\s*)+",
    re.IGNORECASE,
)
_COMMIT_I = re.compile(r"\b(?:I'll|I will|I'm going to|I am going to)\s+(.+)", re.IGNORECASE)
_COMMIT_NAMED = re.compile(rf"\b{_NAME}(?: will| is going to|'ll)\s+(.+)")
# No re.I where a pattern holds _NAME: names are told apart by their capital.
_ASK = re.compile(
    rf"(?:\b{_NAME},?\s+)?\b(?:[Cc]an|[Cc]ould|[Ww]ould) you(?: please)?\s+(.+)"
    r"|\b[Pp]lease\s+(.+)"
)
_OBLIGATION = re.compile(r"\b(?:needs? to|have to|has to|must)\b", re.IGNORECASE)
_I_OBLIGATION = re.compile(r"\bI (?:need to|have to|must)\s+(.+)", re.IGNORECASE)
_ABOUT_MEETING = re.compile(
    r"\b(?:this|today's|the) (?:meeting|call|stand-?up|sync)\b", re.IGNORECASE
)
_SMALL_TALK = re.compile(r"\b(?:hear|see) (?:me|us|my screen)\b", re.IGNORECASE)
_DECISION = re.compile(
    r"\b(?:we(?:'ve| have)? decided|agreed|let's go with|let us go with|"
    r"the decision is|we'll go with|we will go with|decision:)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z][a-z']+")
_STOPWORDS = {
    "about", "above", "after", "again", "also", "because", "been", "before", "being",
    "below", "between", "both", "could", "does", "doing", "down", "during", "each", "from",
    "further", "have", "having", "here", "into", "just", "more", "most", "once", "only",
    "other", "over", "same", "should", "some", "such", "than", "that", "their", "them",
    "then", "there", "these", "they", "this", "those", "through", "under", "until", "very",
    "were", "what", "when", "where", "which", "while", "will", "with", "would", "your",
    "yours", "i'll", "i'm", "we'll", "we're", "it's", "that's", "let's", "okay", "yeah",
    "really", "thanks", "thank", "everyone", "morning", "hello",
}  # fmt: skip


@dataclass(frozen=True)
class _Sentence:
    speaker: str
    start_ms: int
    text: str


class LocalAnalyzer:
    name = "local"

    def __init__(self, today: date | None = None) -> None:
        """`today` anchors relative due dates ("by Friday"); the server's date by default."""
        self._today = today

    def run(
        self, step: str, transcript: Transcript, context: AnalysisContext = NO_CONTEXT
    ) -> StepOutput:
        """One step's validated answer, computed from the transcript and the client's shaping."""
        handlers = {
            "speaker_names": self._speaker_names,
            "summary": self._summary,
            "action_items": self._action_items,
            "decisions": self._decisions,
        }
        key = analysis.section_key(step)
        if key is None and step not in handlers:
            raise PermanentError("analysis_unknown_step", f"No offline rules for step {step!r}")
        language = context.output_language.lower()
        if step != "speaker_names" and language and not language.startswith("en"):
            raise PermanentError(
                "language_unsupported",
                f"The offline analyzer writes English only, not {context.output_language!r}",
            )
        if key is not None:
            data = self._section(transcript, context.section(key).title, context)
        else:
            data = handlers[step](transcript, context)
        data = _respell(data, context.vocabulary)
        return StepOutput(data=analysis.validate(step, data, context), notes=list(NOTES))

    def _names(self, transcript: Transcript, context: AnalysisContext) -> dict[str, str]:
        """speaker_names, kept to the known participants when there are any."""
        names = speaker_names(transcript)
        participants = [p.name for p in context.participants]
        if not participants:
            return names
        matched = {
            label: analysis.match_participant(name, participants) for label, name in names.items()
        }
        return {label: name for label, name in matched.items() if name}

    def _section(
        self, transcript: Transcript, title: str, context: AnalysisContext
    ) -> dict[str, Any]:
        instructions = next(s.instructions for s in context.sections if s.title == title)
        wanted = {w[:5] for w in _content_words(f"{title} {instructions}")}
        wanted |= {w for w in _WORD.findall(title.lower()) if len(w) > 2}
        items = []
        for sentence in _sentences(transcript):
            if {w[:5] for w in _WORD.findall(sentence.text.lower())} & wanted:
                items.append({"text": _clean(sentence.text), "source_start_ms": sentence.start_ms})
            if len(items) == SECTION_ITEMS:
                break
        return {"items": items}

    def _speaker_names(self, transcript: Transcript, context: AnalysisContext) -> dict[str, Any]:
        names = self._names(transcript, context)
        labels = dict.fromkeys(u.speaker for u in transcript.utterances)
        return {"speakers": [{"label": label, "name": names.get(label)} for label in labels]}

    def _summary(self, transcript: Transcript, context: AnalysisContext) -> dict[str, Any]:
        sentences = _sentences(transcript)
        frequency = Counter(w for s in sentences for w in _content_words(s.text))
        top = max(frequency.values(), default=1)

        def score(sentence: _Sentence) -> float:
            words = _content_words(sentence.text)
            if len(words) < 3:  # greetings and one-word answers say nothing
                return 0.0
            return sum(frequency[w] / top for w in words) / math.sqrt(len(words))

        chosen: list[int] = []
        for i in sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i)):
            if len(chosen) == SUMMARY_SENTENCES or score(sentences[i]) == 0:
                break
            # A request and its acceptance repeat each other: keep one.
            if all(_overlap(sentences[i].text, sentences[j].text) < 0.5 for j in chosen):
                chosen.append(i)
        chosen.sort()
        names = self._names(transcript, context)
        parts = [
            f"{names.get(sentences[i].speaker, sentences[i].speaker)}: {sentences[i].text}"
            for i in chosen
        ]
        return {
            "summary": " ".join([SUMMARY_PREFIX, *(parts or ["Nothing substantive was said."])])
        }

    def _action_items(self, transcript: Transcript, context: AnalysisContext) -> dict[str, Any]:
        names = self._names(transcript, context)
        participants = [p.name for p in context.participants]
        today = self._today or date.today()
        items: list[dict[str, Any]] = []
        for sentence in _sentences(transcript):
            found = _action(sentence, names)
            if found is None:
                continue
            text, owner = found
            owner = (analysis.match_participant(owner, participants) or owner) if owner else owner
            due = find_due_date(sentence.text, today)
            item = {
                "text": text,
                "owner": owner,
                "due_date": due.isoformat() if due else None,
                "source_start_ms": sentence.start_ms,
            }
            # "Bob, can you X by Friday?" / "Sure, I will X by Friday." is one task.
            if not any(_same_task(item, earlier) for earlier in items):
                items.append(item)
        return {"action_items": items}

    def _decisions(self, transcript: Transcript, context: AnalysisContext) -> dict[str, Any]:
        sentences = _sentences(transcript)
        decisions: list[dict[str, Any]] = []
        for position, sentence in enumerate(sentences):
            if not _DECISION.search(sentence.text):
                continue
            source = sentence
            if len(_content_words(_FILLER.sub("", sentence.text))) < 2:
                # A bare "Agreed." agrees with what the previous speaker proposed.
                earlier = [s for s in sentences[:position] if s.speaker != sentence.speaker]
                if not earlier:
                    continue
                source = earlier[-1]
            decision = {"text": _clean(source.text), "source_start_ms": source.start_ms}
            if not any(_overlap(decision["text"], d["text"]) >= 0.6 for d in decisions):
                decisions.append(decision)
        return {"decisions": decisions}


def speaker_names(transcript: Transcript) -> dict[str, str]:
    """Label -> name, only where the transcript says so without contradiction."""
    utterances = transcript.utterances
    own: dict[str, set[str]] = {}
    addressed: dict[str, set[str]] = {}

    def other_speaker(index: int, step: int) -> str | None:
        speaker = utterances[index].speaker
        index += step
        while 0 <= index < len(utterances):
            if utterances[index].speaker != speaker:
                return utterances[index].speaker
            index += step
        return None

    for index, utterance in enumerate(utterances):
        for match in _SELF_INTRO.finditer(utterance.text):
            _add(own, utterance.speaker, match[1] or match[2])
        for pattern, step in ((_THANKS, -1), (_REQUEST_TO, 1), (_OVER_TO, 1)):
            for match in pattern.finditer(utterance.text):
                label = other_speaker(index, step)
                if label is not None:
                    _add(addressed, label, next(g for g in match.groups() if g))

    introduced = {label: next(iter(c)) for label, c in own.items() if len(c) == 1}
    # Being addressed is weaker evidence: it never overrides an introduction
    # and never hands out a name someone introduced themselves with.
    heard = {
        label: next(iter(h))
        for label, h in addressed.items()
        if label not in own and len(h) == 1 and next(iter(h)) not in introduced.values()
    }
    names = {**heard, **introduced}
    # A name two labels claim belongs to neither with any certainty.
    counts = Counter(names.values())
    return {label: name for label, name in names.items() if counts[name] == 1}


def _respell(data: Any, vocabulary: tuple[str, ...]) -> Any:
    """`data` with every vocabulary term spelled as listed (whole words, any case)."""
    if not vocabulary:
        return data
    if isinstance(data, dict):
        return {
            k: v if k in ("label", "name", "due_date") else _respell(v, vocabulary)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_respell(item, vocabulary) for item in data]
    if isinstance(data, str):
        for term in vocabulary:
            data = re.sub(rf"(?<!\w){re.escape(term)}(?!\w)", term, data, flags=re.IGNORECASE)
    return data


def _add(evidence: dict[str, set[str]], label: str, name: str) -> None:
    if name not in _NOT_NAMES:
        evidence.setdefault(label, set()).add(name)


def _sentences(transcript: Transcript) -> list[_Sentence]:
    return [
        _Sentence(u.speaker, u.start_ms, text)
        for u in transcript.utterances
        for text in re.split(r"(?<=[.!?])\s+", u.text.strip())
        if text
    ]


def _action(sentence: _Sentence, names: dict[str, str]) -> tuple[str, str | None] | None:
    """(task text, owner) when the sentence assigns work, else None."""
    text = _FILLER.sub("", sentence.text)
    if _ABOUT_MEETING.search(text) or _SMALL_TALK.search(text):
        return None
    speaker = names.get(sentence.speaker, sentence.speaker)
    if m := _COMMIT_I.search(text) or _I_OBLIGATION.search(text):
        return _clean(m[1]), speaker
    if (m := _COMMIT_NAMED.search(text)) and m[1] not in _NOT_NAMES:
        return _clean(m[2]), m[1]
    if m := _ASK.search(text):
        owner = m[1] if m[1] and m[1] not in _NOT_NAMES else None
        return _clean(m[2] or m[3]), owner
    if _OBLIGATION.search(text):
        return _clean(text), None
    return None


def _clean(text: str) -> str:
    """The task or decision as a short sentence: no filler, capitalised, no '?'."""
    text = _FILLER.sub("", text.strip()).rstrip(" ?!.")
    return text[:1].upper() + text[1:] if text else text


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) > 3 and w not in _STOPWORDS]


def _overlap(a: str, b: str) -> float:
    left, right = set(_content_words(a)), set(_content_words(b))
    return len(left & right) / len(left | right) if left | right else 0.0


def _same_task(item: dict[str, Any], earlier: dict[str, Any]) -> bool:
    return (
        item["owner"] == earlier["owner"]
        and item["due_date"] == earlier["due_date"]
        and _overlap(item["text"], earlier["text"]) >= 0.6
    )
