"""The Job shape of SPEC, and validation of what a CMS submits."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import serializers

from .media import read_head, sniff_container
from .models import Job, JobEvent
from .tokens import results_url, status_url

METADATA_MAX_BYTES = 16 * 1024


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class JobSerializer(serializers.ModelSerializer):
    error = ErrorSerializer(allow_null=True, read_only=True)
    meeting_id = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()
    results_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "status",
            "stage",
            "progress",
            "message",
            "title",
            "language",
            "external_id",
            "metadata",
            "attempts",
            "error",
            "next_attempt_at",
            "created_at",
            "started_at",
            "completed_at",
            "meeting_id",
            "status_url",
            "results_url",
        ]
        read_only_fields = fields

    def _meeting_id(self, job: Job) -> Any:
        meeting = getattr(job, "meeting", None)
        return meeting.id if meeting else None

    def get_meeting_id(self, job: Job) -> str | None:
        meeting_id = self._meeting_id(job)
        return str(meeting_id) if meeting_id else None

    def get_status_url(self, job: Job) -> str:
        return status_url(job)

    def get_results_url(self, job: Job) -> str | None:
        return results_url(job, self._meeting_id(job))


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["created_at", "status", "stage", "progress", "attempt", "message"]


class JobCreateSerializer(serializers.Serializer):
    audio = serializers.FileField(required=False, allow_empty_file=True)
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)
    language = serializers.CharField(required=False, allow_blank=True, max_length=16)
    speakers_expected = serializers.IntegerField(required=False, min_value=1, max_value=20)
    webhook_url = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    webhook_secret = serializers.CharField(required=False, allow_blank=True, max_length=200)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    metadata = serializers.JSONField(required=False)

    def validate_metadata(self, value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise serializers.ValidationError("metadata must be a JSON object") from None
        if not isinstance(value, dict):
            raise serializers.ValidationError("metadata must be a JSON object")
        if len(json.dumps(value)) > METADATA_MAX_BYTES:
            raise serializers.ValidationError(
                f"metadata must be under {METADATA_MAX_BYTES} bytes as JSON"
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("audio"):
            raise serializers.ValidationError({"audio": "Upload an audio file."})
        return attrs


def audio_problem(upload: Any) -> tuple[int, str, str] | None:
    """Why an uploaded file cannot be processed: (status, code, message), or None."""
    if upload.size > settings.UPLOAD_MAX_BYTES:
        return 413, "file_too_large", f"The file exceeds {settings.UPLOAD_MAX_BYTES} bytes."
    if upload.size == 0:
        return 422, "empty_file", "The file is empty."
    if sniff_container(read_head(upload.file)) is None:
        return 415, "unsupported_media", "The file is not a recognised audio or video format."
    return None
