"""What a client may shape about a job's analysis, and its limits (SPEC "Shaping the analysis").

A template, a job's own instructions, its participants, vocabulary and
output language are all client data. They are checked here against fixed
caps (so one job cannot make every prompt huge) and turned into the
AnalysisContext the providers receive. Nothing here is ever executed or
formatted into our own instructions.

The checks are plain functions rather than a schema library's models: the
same messages ("participants[3].name must be ...") serve the API, admin
and the CLI, and DRF, Django forms and argparse each wrap them their way.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any

from jobs.models import AnalysisTemplate, ApiClient, Job
from jobs.providers.base import AnalysisContext, Participant, Section

INSTRUCTIONS_MAX = 4000
TEMPLATE_NAME_MAX = 100
TEMPLATES_MAX = 100  # per client
SECTIONS_MAX = 10
SECTION_TITLE_MAX = 100
SECTION_INSTRUCTIONS_MAX = 1000
SECTION_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
PARTICIPANTS_MAX = 50
PARTICIPANT_NAME_MAX = 120
PARTICIPANT_ROLE_MAX = 120
VOCABULARY_MAX = 200
TERM_MAX = 60
LANGUAGE_CODE = r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$"


class ShapingProblem(ValueError):
    """Client data outside the limits; the message says which and why."""


def _text(value: Any, what: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ShapingProblem(f"{what} must be a string.")
    value = value.strip()
    if required and not value:
        raise ShapingProblem(f"{what} may not be blank.")
    if len(value) > limit:
        raise ShapingProblem(f"{what} must be at most {limit} characters.")
    # The API's text rule (meeting_intel/http/schema_contract.py): no C0/C1
    # controls but tab, newline and carriage return.
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t\r" for ch in value):
        raise ShapingProblem(f"{what} may not contain control characters.")
    return value


def _one_line(value: str) -> str:
    return " ".join(value.split())


def clean_template_name(value: Any) -> str:
    # One line: inner newlines and tabs become spaces (the schema cannot refuse them).
    return _one_line(_text(value, "name", TEMPLATE_NAME_MAX, required=True))


def clean_instructions(value: Any, what: str = "instructions") -> str:
    return _text(value, what, INSTRUCTIONS_MAX)


def clean_sections(value: Any) -> list[dict[str, str]]:
    """`[{key, title, instructions}]` with unique slug keys, at most SECTIONS_MAX."""
    if not isinstance(value, list):
        raise ShapingProblem("sections must be a list.")
    if len(value) > SECTIONS_MAX:
        raise ShapingProblem(f"A template has at most {SECTIONS_MAX} sections.")
    cleaned, keys = [], set()
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"key", "title", "instructions"}:
            raise ShapingProblem(
                f"sections[{i}] must be an object with key, title and instructions."
            )
        key = item.get("key")
        if not isinstance(key, str) or not SECTION_KEY.match(key):
            raise ShapingProblem(
                f"sections[{i}].key must be 1-40 lower-case letters, digits or _, "
                "starting with a letter."
            )
        if key in keys:
            continue  # a repeated key: the first section with it counts
        keys.add(key)
        cleaned.append(
            {
                "key": key,
                "title": _text(
                    item.get("title"), f"sections[{i}].title", SECTION_TITLE_MAX, required=True
                ),
                "instructions": _text(
                    item.get("instructions"),
                    f"sections[{i}].instructions",
                    SECTION_INSTRUCTIONS_MAX,
                ),
            }
        )
    return cleaned


def clean_participants(value: Any) -> list[dict[str, str]]:
    """`[{name, role?}]`, at most PARTICIPANTS_MAX, names unique."""
    if not isinstance(value, list):
        raise ShapingProblem("participants must be a list of {name, role} objects.")
    if len(value) > PARTICIPANTS_MAX:
        raise ShapingProblem(f"At most {PARTICIPANTS_MAX} participants.")
    cleaned, names = [], set()
    for i, item in enumerate(value):
        if not isinstance(item, dict) or "name" not in item or set(item) - {"name", "role"}:
            raise ShapingProblem(f"participants[{i}] must be an object with a name and a role.")
        name = _text(item["name"], f"participants[{i}].name", PARTICIPANT_NAME_MAX, required=True)
        name = _one_line(name)
        if name.casefold() in names:
            continue  # listed twice: the first entry counts
        names.add(name.casefold())
        role = _text(item.get("role"), f"participants[{i}].role", PARTICIPANT_ROLE_MAX)
        cleaned.append({"name": name, "role": " ".join(role.split())})
    return cleaned


def clean_vocabulary(value: Any) -> list[str]:
    """At most VOCABULARY_MAX one-line terms of at most TERM_MAX characters, duplicates dropped."""
    if not isinstance(value, list):
        raise ShapingProblem("vocabulary must be a list of strings.")
    if len(value) > VOCABULARY_MAX:
        raise ShapingProblem(f"At most {VOCABULARY_MAX} vocabulary terms.")
    terms: dict[str, str] = {}
    for i, term in enumerate(value):
        term = _one_line(_text(term, f"vocabulary[{i}]", TERM_MAX, required=True))
        terms.setdefault(term.casefold(), term)
    return list(terms.values())


def resolve_template(client: ApiClient | None, ref: str | None) -> AnalysisTemplate | None:
    """The client's template named by id or name; its default when `ref` is blank.

    Raises AnalysisTemplate.DoesNotExist for a `ref` that names none of the
    client's templates (another client's template included).
    """
    if client is None:
        return None
    mine = AnalysisTemplate.objects.filter(client=client)
    if not ref:
        return mine.filter(is_default=True).first()
    found = mine.filter(name=ref).first()
    if found is None:
        try:
            found = mine.filter(id=uuid.UUID(ref)).first()
        except ValueError:
            found = None
    if found is None:
        raise AnalysisTemplate.DoesNotExist(ref)
    return found


def apply_template(job: Job, template: AnalysisTemplate | None) -> None:
    """Point the job at `template` (None: the built-in analysis) and keep its snapshot."""
    job.template = template
    job.analysis_template = template.snapshot() if template is not None else {}


def hints(job: Job) -> tuple[str, ...]:
    """What the transcriber should spell right: the vocabulary, then the participants' names."""
    seen: set[str] = set()
    terms = []
    for term in [*(job.vocabulary or []), *(p["name"] for p in job.participants or [])]:
        if term.casefold() not in seen:
            seen.add(term.casefold())
            terms.append(term)
    return tuple(terms)


def context_for(job: Job, meeting_language: str) -> AnalysisContext:
    """The AnalysisContext of a job whose meeting is in `meeting_language`."""
    template = job.analysis_template or {}
    instructions = "\n\n".join(
        text for text in (template.get("instructions", ""), job.instructions) if text
    )
    return AnalysisContext(
        instructions=instructions,
        sections=tuple(
            Section(s["key"], s["title"], s.get("instructions", ""))
            for s in template.get("sections", [])
        ),
        participants=tuple(
            Participant(p["name"], p.get("role", "")) for p in job.participants or []
        ),
        vocabulary=tuple(job.vocabulary or []),
        output_language=job.summary_language or meeting_language,
    )
