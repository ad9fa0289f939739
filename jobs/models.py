"""Jobs: the unit of work a CMS or a staff member submits, and its timeline."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from jobs.failures import public_error


class ApiClient(models.Model):
    """A CMS integration. Its key is shown once; only a SHA-256 hash is stored."""

    KEY_PREFIX = "mip_"

    name = models.CharField(max_length=100, unique=True)
    key_prefix = models.CharField(max_length=16, editable=False, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    monthly_budget_usd = models.DecimalField(
        "monthly budget (USD)",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Submissions are refused (429 budget_exceeded) once the jobs created this "
        "calendar month (UTC) cost this much. Blank: no budget.",
    )

    class Meta:
        ordering = ["name"]
        permissions = [("revoke_apiclient", "Can revoke API keys")]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash_key(key: str) -> str:
        # Keys are 256-bit random tokens, so a fast hash is safe here and keeps
        # authentication to one indexed lookup.
        return hashlib.sha256(key.encode()).hexdigest()

    def issue_key(self) -> str:
        """Give the client a fresh key, returning it; the caller must save()."""
        key = self.KEY_PREFIX + secrets.token_urlsafe(32)
        self.key_prefix = key[:12]
        self.key_hash = self.hash_key(key)
        return key

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    # DRF checks `is_authenticated` on request.user.
    is_authenticated = True


class AnalysisTemplate(models.Model):
    """What a client asks the analysis for: instructions and extra structured sections.

    Template text is data: it is sent to the model apart from the system
    prompt and capped in length (see jobs.shaping), never run as code.
    A job keeps a snapshot of its template (`Job.analysis_template`), so
    editing or deleting a template never changes a finished meeting.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=100)
    instructions = models.TextField(blank=True)
    sections = models.JSONField(default=list, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client", "name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "name"], name="template_unique_name"),
            models.UniqueConstraint(
                fields=["client"],
                condition=models.Q(is_default=True),
                name="template_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "instructions": self.instructions, "sections": self.sections}


class Job(models.Model):
    class WebhookPayload(models.TextChoices):
        FULL = "full"
        THIN = "thin"

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        RETRYING = "retrying"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Stage(models.TextChoices):
        QUEUED = "queued"
        TRANSCRIBING = "transcribing"
        ANALYZING = "analyzing"
        SAVING = "saving"
        NOTIFYING = "notifying"
        DONE = "done"

    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
    ACTIVE = (Status.PENDING, Status.PROCESSING, Status.RETRYING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(
        ApiClient, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)

    title = models.CharField(max_length=300, blank=True)
    language = models.CharField(max_length=16, blank=True, help_text="Blank: detect.")
    speakers_expected = models.PositiveSmallIntegerField(null=True, blank=True)
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)

    # What the analysis is asked for (SPEC "Shaping the analysis").
    template = models.ForeignKey(
        AnalysisTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    analysis_template = models.JSONField(
        default=dict, blank=True, help_text="The template as it was when the job was submitted."
    )
    instructions = models.TextField(blank=True)
    participants = models.JSONField(default=list, blank=True)
    vocabulary = models.JSONField(default=list, blank=True)
    summary_language = models.CharField(max_length=16, blank=True)
    webhook_payload = models.CharField(
        max_length=8, choices=WebhookPayload.choices, default=WebhookPayload.FULL
    )

    audio = models.FileField(upload_to="audio/%Y/%m/%d/", blank=True)
    audio_url = models.URLField(max_length=2000, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    audio_bytes = models.BigIntegerField(null=True, blank=True)
    audio_duration_seconds = models.FloatField(null=True, blank=True)

    webhook_url = models.URLField(max_length=2000, blank=True)
    webhook_secret = models.CharField(max_length=200, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    step_retries = models.PositiveIntegerField(default=0)
    redeliveries = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the job's next step should run: the sweeper sends it again when
    # that time is long past and no step holds the lease (jobs.sweeper).
    due_at = models.DateTimeField(null=True, blank=True)

    # Stage timings of the current run, moved by the state write that changes
    # the stage (jobs.state.update_job), so nothing reads the timeline to time
    # a stage: when the run (submission, retry, reprocess) and the current
    # stage began, and the seconds the run spent in each stage it has left.
    run_started_at = models.DateTimeField(default=timezone.now, null=True, blank=True)
    stage_started_at = models.DateTimeField(default=timezone.now, null=True, blank=True)
    stage_seconds = models.JSONField(default=dict, blank=True)

    # A lease makes each step run once at a time even when Celery delivers a
    # message twice; `lease_task` is the id of the task that holds it.
    lease_task = models.CharField(max_length=64, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)

    # Checkpoints: a retry or redelivery resumes after the last of these.
    transcription_provider = models.CharField(max_length=32, blank=True)
    transcript_external_id = models.CharField(max_length=128, blank=True)
    transcript_submitted_at = models.DateTimeField(null=True, blank=True)
    transcript_polls = models.PositiveIntegerField(default=0)
    transcript_saved_at = models.DateTimeField(null=True, blank=True)
    analysis_steps_done = models.JSONField(default=list, blank=True)
    analysis_steps_failed = models.JSONField(default=list, blank=True)
    # Per-chunk answers of long transcripts: {step: {chunk index: answer}}.
    analysis_partials = models.JSONField(default=dict, blank=True)
    results_saved_at = models.DateTimeField(null=True, blank=True)
    # The search index step (jobs/pipeline/index.py): "" still to do, "done",
    # or "failed" (the meeting lists `search_index` under degraded).
    search_index = models.CharField(max_length=8, blank=True)

    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # Seconds of audio sent to a transcriber, summed over every transcription
    # (a reprocess from transcription pays again).
    transcribed_seconds = models.FloatField(default=0)
    # SPEC's usage, priced when the job ends (jobs/usage.py); {} before.
    usage = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    embedding_tokens = models.PositiveIntegerField(default=0)

    viewer_token_version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("cancel_job", "Can cancel jobs"),
            ("retry_job", "Can retry jobs"),
            ("reprocess_job", "Can reprocess jobs"),
            ("revoke_viewer_links", "Can revoke viewer links"),
        ]
        indexes = [
            models.Index(fields=["client", "-created_at"], name="job_client_created"),
            models.Index(fields=["client", "status", "-created_at"], name="job_client_status"),
            models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat"),
            models.Index(fields=["status", "stage"], name="job_status_stage"),
            models.Index(fields=["status", "due_at"], name="job_status_due"),
        ]

    def __str__(self) -> str:
        return self.title or str(self.id)

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def template_name(self) -> str | None:
        return self.analysis_template.get("name") or None

    @property
    def error(self) -> dict[str, Any] | None:
        # The message comes from a fixed table; error_message (the exception
        # text) is for the logs and admin only.
        return public_error(self.error_code)


class JobEvent(models.Model):
    """One line of a job's timeline: every transition and notable step."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Job.Status.choices)
    stage = models.CharField(max_length=16, choices=Job.Stage.choices)
    progress = models.PositiveSmallIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["job", "created_at"], name="jobevent_job_created")]

    def __str__(self) -> str:
        return f"{self.status}/{self.stage}: {self.message}"


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` and the response its first request got (Stripe's semantics).

    The row is created in the job's own transaction, and (client, key) is
    unique, so two concurrent requests with one key create one job.
    """

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request.")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotency_unique_key")
        ]
        indexes = [models.Index(fields=["client", "created_at"], name="idempotency_client_created")]

    def __str__(self) -> str:
        return self.key
