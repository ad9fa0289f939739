"""The Meeting shape of SPEC, shared by the API, webhooks and the CLI."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from rest_framework import serializers

from .models import ActionItem, Decision, Meeting, Segment, Speaker


class SpeakerSerializer(serializers.ModelSerializer):
    name = serializers.CharField(allow_blank=True, max_length=120)

    class Meta:
        model = Speaker
        fields = ["label", "name"]
        read_only_fields = ["label"]


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


class MeetingSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(read_only=True)
    speakers = SpeakerSerializer(many=True, read_only=True)
    segments = SegmentSerializer(many=True, read_only=True)
    action_items = ActionItemSerializer(many=True, read_only=True)
    decisions = DecisionSerializer(many=True, read_only=True)
    degraded = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Meeting
        fields = [
            "id",
            "job_id",
            "title",
            "language",
            "duration_seconds",
            "summary",
            "speakers",
            "segments",
            "action_items",
            "decisions",
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
