"""Writing pipeline results into a meeting.

Each function replaces exactly the rows its step owns, so running a step
again (a retry, a redelivery, a reprocess) never duplicates anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django.utils import timezone

from meeting_intel.lib.bulk import Rows, Write, insert_rows, perform
from meetings.models import ActionItem, Decision, Meeting, Segment, Speaker
from meetings.transcript import Transcript, Utterance


def save_transcript(job: Any, transcript: Transcript, provider: str) -> Meeting:
    """Create or refresh the job's meeting with these speaker turns. Call inside a transaction.

    `job` is the ``jobs.Job`` the meeting belongs to (typed loosely: meetings
    imports no other app); its title, file name and language fill the gaps.
    """
    meeting, _ = Meeting.objects.update_or_create(
        job=job,
        defaults={
            "title": job.title or job.original_filename or "Untitled meeting",
            "language": transcript.language or job.language,
            "detected_language": transcript.detected_language,
            "duration_seconds": transcript.duration_seconds,
            "transcription_provider": provider,
            "summary": "",
            "sections": {},
            "section_order": [],
            "degraded": [],
            "search_indexed_at": None,
        },
    )
    meeting.passages.all().delete()  # the search index step rebuilds them
    meeting.speakers.all().delete()  # cascades to segments
    meeting.action_items.all().delete()
    meeting.decisions.all().delete()
    labels = sorted({u.speaker for u in transcript.utterances})
    speakers = Speaker.objects.bulk_create(Speaker(meeting=meeting, label=lb) for lb in labels)
    speaker_ids = {s.label: s.id for s in speakers}
    insert_rows(
        Segment,
        ("speaker_id", "index", "start_ms", "end_ms", "text"),
        (
            (speaker_ids[u.speaker], i, int(u.start_ms), int(u.end_ms), u.text)
            for i, u in enumerate(transcript.utterances)
        ),
        shared={"meeting_id": meeting.id},
    )
    return meeting


def load_transcript(meeting: Meeting) -> Transcript:
    return load_transcript_and_names(meeting)[0]


def segment_rows(meeting: Meeting) -> list[Any]:
    """The meeting's segments in order as plain rows (a one-hour meeting has hundreds):
    index, start_ms, end_ms, speaker_id, label, name, text. One query; the rows are
    kept on `meeting` for the next `load_transcript_and_names` of the same object, so
    the analysis chained after the search index reads the transcript once."""
    rows = list(_segments(meeting))
    meeting._segment_rows = rows
    return rows


def _segments(meeting: Meeting) -> Any:
    return meeting.segments.order_by("index").values_list(
        "index",
        "start_ms",
        "end_ms",
        "speaker_id",
        "speaker__label",
        "speaker__name",
        "text",
        named=True,
    )


def load_transcript_and_names(meeting: Meeting) -> tuple[Transcript, dict[str, str]]:
    """The meeting's transcript, and the names given to its speakers' labels, in one query
    (none when `segment_rows` just read them into this object)."""
    rows = meeting.__dict__.pop("_segment_rows", None)
    if rows is None:
        rows = _segments(meeting)
    utterances, names = [], {}
    for row in rows:
        utterances.append(Utterance(row.speaker__label, row.start_ms, row.end_ms, row.text))
        names[row.speaker__label] = row.speaker__name
    transcript = Transcript(
        utterances=utterances, language=meeting.language, duration_seconds=meeting.duration_seconds
    )
    return transcript, names


def _parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _non_negative(value: int | None) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def save_section(
    meeting: Meeting,
    key: str,
    title: str,
    items: list[dict[str, Any]],
    order: list[str],
    also: Sequence[str] = (),
) -> None:
    """Store one template section's validated items. Call inside a transaction (it locks the row).

    `also`: further meeting fields, set in memory, written in the same UPDATE.
    """
    fresh = Meeting.objects.select_for_update().only("sections").get(id=meeting.id)
    sections = dict(fresh.sections)
    sections[key] = {
        "title": title,
        "items": [
            {
                "text": item["text"].strip(),
                "source_start_ms": _non_negative(item["source_start_ms"]),
            }
            for item in items
            if item["text"].strip()
        ],
    }
    meeting.sections, meeting.section_order = sections, order
    meeting.save(update_fields=["sections", "section_order", *also, "updated_at"])


def save_step(meeting: Meeting, step: str, data: dict[str, Any], also: Sequence[str] = ()) -> None:
    """Store one analysis step's validated answer. Call inside a transaction.

    `also`: further meeting fields, set in memory, written in the same UPDATE
    when the step writes the meeting's row (the summary's does).
    """
    for write in step_writes(meeting, step, data, also):
        perform(write)


def step_writes(
    meeting: Meeting, step: str, data: dict[str, Any], also: Sequence[str] = ()
) -> list[Write]:
    """One analysis step's answer as its writes, in order: the rows it replaces go,
    the new ones come. A caller may send them inside another statement (see
    ``jobs.state.write_with_event``). The meeting in memory follows.

    `also`: as for `save_step`.
    """
    writes: list[Write] = []
    if step == "speaker_names":
        for entry in data["speakers"]:
            name = (entry.get("name") or "").strip()[:120]
            if name:
                # A name a person gave stays: the analysis only names the others.
                rows = meeting.speakers.filter(label=entry["label"], renamed_at__isnull=True)
                writes.append((rows, {"name": name}))
    elif step == "summary":
        meeting.summary = data["summary"].strip()
        meeting.updated_at = timezone.now()
        fields = ["summary", *also, "updated_at"]
        row = Meeting.objects.filter(pk=meeting.pk)
        writes.append((row, {name: getattr(meeting, name) for name in fields}))
    elif step == "action_items":
        writes.append((meeting.action_items.all(), None))
        items = [
            (
                i,
                item["text"].strip(),
                (item.get("owner") or "").strip()[:120],
                (item.get("owner_label") or "")[:16],
                _parse_date(item.get("due_date")),
                _non_negative(item.get("source_start_ms")),
            )
            for i, item in enumerate(data["action_items"])
            if item["text"].strip()
        ]
        if items:
            writes.append(Rows(ActionItem, ACTION_ITEM_FIELDS, items, {"meeting_id": meeting.id}))
    elif step == "decisions":
        writes.append((meeting.decisions.all(), None))
        decisions = [
            (i, item["text"].strip(), _non_negative(item.get("source_start_ms")))
            for i, item in enumerate(data["decisions"])
            if item["text"].strip()
        ]
        if decisions:
            writes.append(Rows(Decision, DECISION_FIELDS, decisions, {"meeting_id": meeting.id}))
    else:
        raise ValueError(f"unknown analysis step {step!r}")
    return writes


ACTION_ITEM_FIELDS = (
    "index",
    "text",
    "owner",
    "owner_label",
    "due_date",
    "source_start_ms",
)
DECISION_FIELDS = ("index", "text", "source_start_ms")
