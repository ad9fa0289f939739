"""Factories for the API tests: clients and keys, jobs, meetings, and media bytes."""

from __future__ import annotations

import io
import itertools
import struct
import wave
from pathlib import Path
from typing import Any

from django.conf import settings
from rest_framework.test import APIClient

from jobs.models import ApiClient, Job
from meetings.models import ActionItem, Decision, Meeting, Segment, Speaker

_names = itertools.count()


def new_client(name: str | None = None) -> tuple[ApiClient, str]:
    client = ApiClient(name=name or f"cms-test-{next(_names)}-{id(object())}")
    key = client.issue_key()
    client.save()
    return client, key


def client_with_api(name: str | None = None) -> tuple[ApiClient, APIClient]:
    """A new CMS client and an API session authenticated as it."""
    client, key = new_client(name)
    return client, api_for(key)


def api_for(key: str | None) -> APIClient:
    api = APIClient()
    if key:
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api


def make_job(client: ApiClient | None, **fields: Any) -> Job:
    return Job.objects.create(client=client, title=fields.pop("title", "A meeting"), **fields)


def make_meeting(
    job: Job,
    turns: list[tuple[str, int, int, str]],
    names: dict[str, str] | None = None,
    action_items: list[dict[str, Any]] | None = None,
    decisions: list[str] | None = None,
) -> Meeting:
    """A meeting with segments from (label, start_ms, end_ms, text) turns."""
    meeting = Meeting.objects.create(job=job, title=job.title, language="en", duration_seconds=60)
    speakers = {
        label: Speaker.objects.create(
            meeting=meeting, label=label, name=(names or {}).get(label, "")
        )
        for label in sorted({t[0] for t in turns})
    }
    Segment.objects.bulk_create(
        Segment(meeting=meeting, speaker=speakers[label], index=i, start_ms=s, end_ms=e, text=text)
        for i, (label, s, e, text) in enumerate(turns)
    )
    for i, item in enumerate(action_items or []):
        ActionItem.objects.create(meeting=meeting, index=i, **item)
    for i, text in enumerate(decisions or []):
        Decision.objects.create(meeting=meeting, index=i, text=text, source_start_ms=0)
    return meeting


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A valid mono 16-bit WAV of silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


def wav_header(data_bytes: int, rate: int = 16000) -> bytes:
    """The 44-byte header of a mono 16-bit WAV whose data is `data_bytes` long."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def stored_files() -> set[Path]:
    """Every file under MEDIA_ROOT, to show a refused request stored nothing."""
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()
