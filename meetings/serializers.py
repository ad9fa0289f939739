"""The Meeting shape of SPEC, shared by the API, webhooks and the CLI."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from meetings.models import ActionItem, Decision, Meeting, Segment, Speaker


class SpeakerSerializer(serializers.ModelSerializer):
    name = serializers.CharField(
        allow_blank=True,
        max_length=120,
        help_text='The speaker\'s name; blank shows the label ("Speaker A").',
    )

    class Meta:
        model = Speaker
        fields = ["label", "name"]
        read_only_fields = ["label"]

    def validate_name(self, value: str) -> str:
        if any(not ch.isprintable() for ch in value):
            raise serializers.ValidationError("The name may not contain control characters.")
        return value

    def update(self, speaker: Speaker, validated_data: dict[str, Any]) -> Speaker:
        """Rename the speaker; the analysis keeps the name from then on.

        Action items owned by this speaker follow the rename: those the analysis
        tied to its label, and those owned under the old name when no other
        speaker of the meeting goes by that name.
        """
        old_name = speaker.display_name
        with transaction.atomic():
            speaker.name = validated_data.get("name", speaker.name)
            speaker.renamed_at = timezone.now()
            speaker.save(update_fields=["name", "renamed_at"])
            if speaker.display_name != old_name:
                items = ActionItem.objects.filter(meeting_id=speaker.meeting_id)
                shared = any(
                    other.display_name == old_name
                    for other in Speaker.objects.filter(meeting_id=speaker.meeting_id).exclude(
                        id=speaker.id
                    )
                )
                mine = Q(owner_label=speaker.label) | Q(owner_label="", owner=old_name)
                if shared:
                    mine = Q(owner_label=speaker.label)
                items.filter(mine).update(owner=speaker.display_name)
            Meeting.objects.filter(id=speaker.meeting_id).update(updated_at=timezone.now())
        return speaker


class SegmentSerializer(serializers.ModelSerializer):
    speaker = serializers.CharField(source="speaker.label", read_only=True)
    speaker_name = serializers.CharField(source="speaker.display_name", read_only=True)

    class Meta:
        model = Segment
        fields = ["speaker", "speaker_name", "start_ms", "end_ms", "text"]


class ActionItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ActionItem
        fields = ["text", "owner", "due_date", "source_start_ms"]


class DecisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Decision
        fields = ["text", "source_start_ms"]


_SECTION_ITEM = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "source_start_ms": {"type": ["integer", "null"], "minimum": 0},
    },
    "required": ["text", "source_start_ms"],
}
_SECTION = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "items": {"type": "array", "items": _SECTION_ITEM}},
    "required": ["title", "items"],
}


def ordered_sections(meeting: Meeting) -> dict[str, dict[str, Any]]:
    """The meeting's sections in its template's order (jsonb keeps no key order)."""
    sections = meeting.sections or {}
    order = [k for k in meeting.section_order or [] if k in sections]
    return {key: sections[key] for key in [*order, *sorted(set(sections) - set(order))]}


@extend_schema_field({"type": "object", "additionalProperties": _SECTION})
class SectionsField(serializers.Field):
    """`{key: {title, items[{text, source_start_ms}]}}`, one per section of the job's template."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, meeting: Meeting) -> dict[str, Any]:
        return ordered_sections(meeting)


class MeetingSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(read_only=True)
    speakers = SpeakerSerializer(many=True, read_only=True)
    segments = SegmentSerializer(many=True, read_only=True)
    action_items = ActionItemSerializer(many=True, read_only=True)
    decisions = DecisionSerializer(many=True, read_only=True)
    degraded = serializers.ListField(child=serializers.CharField(), read_only=True)
    sections = SectionsField(
        help_text="The template's sections: `{key: {title, items[{text, source_start_ms}]}}`."
    )

    class Meta:
        model = Meeting
        fields = [
            "id",
            "job_id",
            "title",
            "language",
            "detected_language",
            "duration_seconds",
            "summary",
            "speakers",
            "segments",
            "action_items",
            "decisions",
            "sections",
            "degraded",
            "transcription_provider",
            "analysis_provider",
            "created_at",
        ]


def with_results(queryset: QuerySet[Meeting]) -> QuerySet[Meeting]:
    """Everything MeetingSerializer reads, in a fixed number of queries."""
    return queryset.prefetch_related(
        "speakers",
        Prefetch("segments", queryset=Segment.objects.select_related("speaker")),
        "action_items",
        "decisions",
    )


def meeting_data(meeting_id: object) -> dict[str, Any] | None:
    meeting = with_results(Meeting.objects.filter(id=meeting_id)).first()
    return MeetingSerializer(meeting).data if meeting else None
