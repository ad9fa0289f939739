"""The Job shape of SPEC, and validation of what a CMS submits."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlsplit

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs import shaping
from jobs.api.shaping import InstructionsField, ParticipantsField, VocabularyField
from jobs.models import Job, JobEvent
from jobs.tokens import results_url, status_url
from jobs.usage import Usage, job_usage
from meeting_intel.http import strict_json
from meeting_intel.lib.media import MediaProblem, inspect_upload

METADATA_MAX_BYTES = 16 * 1024


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.JSONField):
    """A JSON object under METADATA_MAX_BYTES; multipart forms send it as a JSON string."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            if isinstance(data, str):
                if len(data.encode("utf-8", "surrogatepass")) > METADATA_MAX_BYTES:
                    raise serializers.ValidationError(self._too_big())
                data = strict_json.loads(data)
            else:
                strict_json.check(data)
        except strict_json.StrictJSONError as exc:
            raise serializers.ValidationError(f"metadata must be a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError("metadata must be a JSON object.")
        try:
            size = len(json.dumps(data).encode())
        except (TypeError, ValueError, RecursionError):
            raise serializers.ValidationError("metadata must be a JSON object.") from None
        if size > METADATA_MAX_BYTES:
            raise serializers.ValidationError(self._too_big())
        return data

    def _too_big(self) -> str:
        return f"metadata must be at most {METADATA_MAX_BYTES} bytes as JSON."


class UsageSerializer(serializers.Serializer):
    audio_seconds = serializers.FloatField(help_text="Audio sent to a transcriber, in seconds.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    embedding_tokens = serializers.IntegerField(
        help_text="Tokens embedded for the meeting's search index."
    )
    transcription_usd = serializers.FloatField()
    analysis_usd = serializers.FloatField()
    embedding_usd = serializers.FloatField()
    total_usd = serializers.FloatField()


class JobSerializer(serializers.ModelSerializer):
    error = ErrorSerializer(allow_null=True, read_only=True)
    metadata = MetadataField(read_only=True)
    meeting_id = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()
    results_url = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    template = serializers.CharField(
        source="template_name",
        allow_null=True,
        read_only=True,
        help_text="The name of the template the job was analysed with; null: the built-in one.",
    )
    participants = ParticipantsField(read_only=True)
    vocabulary = VocabularyField(read_only=True)

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
            "summary_language",
            "speakers_expected",
            "template",
            "instructions",
            "participants",
            "vocabulary",
            "webhook_payload",
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
            "usage",
        ]
        read_only_fields = fields

    def _meeting_id(self, job: Job) -> Any:
        meeting = getattr(job, "meeting", None)
        return meeting.id if meeting else None

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_meeting_id(self, job: Job) -> str | None:
        meeting_id = self._meeting_id(job)
        return str(meeting_id) if meeting_id else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_status_url(self, job: Job) -> str:
        return status_url(job)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_results_url(self, job: Job) -> str | None:
        return results_url(job, self._meeting_id(job))

    @extend_schema_field(UsageSerializer)
    def get_usage(self, job: Job) -> Usage:
        """Priced from the price table (README "Usage and cost"); frozen when the job ends."""
        return job_usage(job)


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["created_at", "status", "stage", "progress", "attempt", "message"]


class JobEventListSerializer(serializers.Serializer):
    results = JobEventSerializer(many=True)


def _check_webhook_secret(value: str) -> str:
    if value.startswith("whsec_"):
        try:
            base64.b64decode(value.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError(
                "A secret starting with whsec_ must be base64 after the prefix."
            ) from None
    return value


@extend_schema_field({"type": "string", "format": "uri", "maxLength": 2000})
class HttpUrlField(serializers.CharField):
    """An absolute http(s) URL, checked as the schema states it (RFC 3986 `uri`).

    Django's URLField also refuses hostnames over 253 characters and other
    forms a URI allows; such a host never resolves, and the SSRF guard (on
    submit and again in the worker) is what decides whether a URL is used.
    """

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not value:
            return value
        try:
            parts = urlsplit(value)
        except ValueError:
            raise serializers.ValidationError("Enter a valid URL.") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise serializers.ValidationError("Only absolute http and https URLs are allowed.")
        if any(ch.isspace() for ch in value):
            raise serializers.ValidationError("Enter a valid URL.")
        return value


class JobCreateSerializer(serializers.Serializer):
    """What a multipart `POST /api/v1/jobs/` accepts: an `audio` file and options.

    A recording by URL is a JSON (or urlencoded form) body: JobUrlCreateSerializer.
    The two shapes are separate so the OpenAPI document can state each exactly.
    """

    audio = serializers.FileField(
        allow_empty_file=True,
        help_text="The recording (audio or video). To give a URL instead, send JSON.",
    )
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$",
        required=False,
        allow_blank=True,
        max_length=16,
        help_text="A language code such as `en` or `en_us`; blank to detect.",
    )
    speakers_expected = serializers.IntegerField(required=False, min_value=1, max_value=20)
    webhook_url = HttpUrlField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Where `job.completed` / `job.failed` are POSTed (Standard Webhooks).",
    )
    webhook_secret = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        validators=[_check_webhook_secret],
        help_text="The signing key: `whsec_<base64>` or any string. Never returned.",
    )
    external_id = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Your own id for the job."
    )
    metadata = MetadataField(
        required=False,
        help_text=f"A JSON object of at most {METADATA_MAX_BYTES} bytes, returned as given "
        "(a JSON string in multipart forms).",
    )
    template = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=shaping.TEMPLATE_NAME_MAX,
        help_text="The id or name of one of your templates; blank: your default template, "
        "else the built-in analysis. An unknown one answers 422 `template_not_found`.",
    )
    instructions = InstructionsField(
        required=False,
        help_text=f"Up to {shaping.INSTRUCTIONS_MAX} characters added to the template's "
        "instructions for this job.",
    )
    participants = ParticipantsField(
        required=False,
        help_text=f"Up to {shaping.PARTICIPANTS_MAX} `{{name, role?}}` (a JSON string in "
        "multipart forms). Speaker naming chooses among these names; `speakers_expected` "
        "defaults to their count.",
    )
    vocabulary = VocabularyField(
        required=False,
        help_text=f"Up to {shaping.VOCABULARY_MAX} terms of at most {shaping.TERM_MAX} "
        "characters (a JSON string in multipart forms), passed to the transcriber as hints "
        "and kept spelled that way by the analysis.",
    )
    summary_language = serializers.RegexField(
        shaping.LANGUAGE_CODE,
        required=False,
        allow_blank=True,
        max_length=16,
        help_text="BCP 47 code of the summary, sections, action items and decisions; "
        "blank: the meeting's language.",
    )
    webhook_payload = serializers.ChoiceField(
        choices=Job.WebhookPayload.choices,
        required=False,
        help_text="`full`: the meeting inline in the webhook; `thin`: ids, status and URLs only.",
    )

    def _check_scheme(self, value: str) -> str:
        if value and not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Only http and https URLs are allowed.")
        return value

    def validate_audio_url(self, value: str) -> str:
        return self._check_scheme(value)

    def validate_webhook_url(self, value: str) -> str:
        return self._check_scheme(value)

    def to_internal_value(self, data: Any) -> Any:
        # The schema lists every field; an unknown one is a mistake worth saying.
        known = set(self.fields)
        unknown = sorted(k for k in getattr(data, "keys", lambda: [])() if k not in known)
        if unknown:
            raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


class JobUrlCreateSerializer(JobCreateSerializer):
    """The JSON (or urlencoded form) submission: the same fields, `audio_url` for the file."""

    audio = None  # type: ignore[assignment]
    audio_url = HttpUrlField(
        max_length=2000,
        help_text="An http(s) URL the platform downloads the recording from. "
        "Private and loopback hosts are refused.",
    )


class ReprocessSerializer(serializers.Serializer):
    from_ = serializers.ChoiceField(
        choices=["transcription", "analysis"],
        help_text="`analysis` keeps the transcript; `transcription` transcribes again.",
    )
    template = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=shaping.TEMPLATE_NAME_MAX,
        help_text="Analyse with this template (id or name) from now on; omitted: keep the "
        "job's template. With `from: analysis` only the analysis runs again.",
    )
    instructions = InstructionsField(
        required=False, help_text="Replace the job's own instructions."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword, so the field is declared as `from_`.
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


def audio_problem(upload: Any) -> tuple[int, str, str] | None:
    """Why an uploaded file cannot be processed: (status, code, message), or None."""
    try:
        inspect_upload(upload)
    except MediaProblem as problem:
        return problem.status, problem.code, problem.message
    return None
