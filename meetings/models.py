"""Meetings: what a finished (or partly finished) job produced."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Meeting(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="meeting")
    title = models.CharField(max_length=300, blank=True)
    language = models.CharField(max_length=16, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    detected_language = models.CharField(
        max_length=16,
        blank=True,
        help_text="What the transcriber detected when no language was given.",
    )
    summary = models.TextField(blank=True)
    # {key: {title, items[{text, source_start_ms}]}}: the job template's sections.
    sections = models.JSONField(default=dict, blank=True)
    # The template's order of section keys (PostgreSQL's jsonb does not keep key order).
    section_order = models.JSONField(default=list, blank=True)
    degraded = models.JSONField(default=list, blank=True)
    transcription_provider = models.CharField(max_length=32, blank=True)
    analysis_provider = models.CharField(max_length=32, blank=True)
    # When the semantic search index (its passages) was last built; null while
    # there is none. Vector stores key their caches on it.
    search_indexed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Speaker(models.Model):
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="speakers")
    label = models.CharField(max_length=16)
    name = models.CharField(max_length=120, blank=True)
    # Set when a person (API client or staff) names the speaker: the analysis
    # then leaves the name alone, reprocessing included.
    renamed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "label"], name="speaker_unique_label")
        ]

    def __str__(self) -> str:
        return self.name_for(self.name, self.label)

    @staticmethod
    def name_for(name: str | None, label: str | None) -> str:
        """How a speaker is shown, from the row's values ("" for no speaker)."""
        if name:
            return name
        return f"Speaker {label}" if label is not None else ""

    @property
    def display_name(self) -> str:
        return str(self)


class Segment(models.Model):
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="segments")
    speaker = models.ForeignKey(Speaker, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField()
    start_ms = models.PositiveIntegerField()
    end_ms = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["meeting", "index"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "index"], name="segment_unique_index")
        ]

    def __str__(self) -> str:
        return self.text[:60]


class ActionItem(models.Model):
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="action_items")
    index = models.PositiveIntegerField(default=0)
    text = models.TextField()
    owner = models.CharField(max_length=120, blank=True)
    # The speaker the owner is (""): a rename of that speaker renames the owner.
    owner_label = models.CharField(max_length=16, blank=True)
    due_date = models.DateField(null=True, blank=True)
    source_start_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["meeting", "index"]
        indexes = [models.Index(fields=["meeting", "index"], name="actionitem_meeting")]

    def __str__(self) -> str:
        return self.text[:60]


class Decision(models.Model):
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="decisions")
    index = models.PositiveIntegerField(default=0)
    text = models.TextField()
    source_start_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["meeting", "index"]
        indexes = [models.Index(fields=["meeting", "index"], name="decision_meeting")]

    def __str__(self) -> str:
        return self.text[:60]


class Passage(models.Model):
    """A few consecutive segments embedded together for semantic search.

    ``embedding`` holds the unit-length vector as little-endian float32 bytes
    from the embedding model named by ``model``; on PostgreSQL with pgvector
    the same vector is also in the ``vec`` column the migration adds.
    """

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="passages")
    index = models.PositiveIntegerField()
    speaker = models.ForeignKey(
        Speaker, on_delete=models.SET_NULL, null=True, blank=True, related_name="passages"
    )
    first_segment = models.PositiveIntegerField()
    last_segment = models.PositiveIntegerField()
    start_ms = models.PositiveIntegerField()
    end_ms = models.PositiveIntegerField()
    text = models.TextField()
    model = models.CharField(max_length=64)
    embedding = models.BinaryField()

    class Meta:
        ordering = ["meeting", "index"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "index"], name="passage_unique_index")
        ]
        indexes = [
            models.Index(fields=["meeting", "first_segment"], name="passage_meeting_segment"),
        ]

    def __str__(self) -> str:
        return self.text[:60]
