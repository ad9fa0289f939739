"""Staff control of jobs and API clients."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from jobs.actions import cancel_job, reprocess_job, retry_job, submit_job
from jobs.api.serializers import audio_problem
from jobs.broadcast import broadcast_job
from jobs.budgets import budget_state, month_spend
from jobs.errors import AudioMissing
from jobs.models import ApiClient, Job, JobEvent
from jobs.templates_admin import reprocess_with_template
from jobs.tokens import status_url
from jobs.usage import job_usage
from meeting_intel.lib.admin_permissions import ExplainedActionsMixin
from meeting_intel.lib.media import safe_filename


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "status", "stage", "progress", "attempt", "message"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class JobAddForm(forms.ModelForm):
    class Meta:
        model = Job
        fields = [
            "audio",
            "title",
            "language",
            "speakers_expected",
            "webhook_url",
            "webhook_secret",
        ]

    def clean_audio(self) -> Any:
        upload = self.cleaned_data.get("audio")
        if not upload:
            raise forms.ValidationError("Upload an audio or video file.")
        problem = audio_problem(upload)
        if problem:
            raise forms.ValidationError(problem[2])
        upload.name = safe_filename(upload.name)
        return upload


@admin.register(Job)
class JobAdmin(ExplainedActionsMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "stage",
        "progress",
        "client",
        "attempts",
        "cost",
        "created_at",
    ]
    list_filter = ["status", "stage", "client", "created_at"]
    search_fields = ["id", "title", "external_id", "original_filename", "error_message"]
    date_hierarchy = "created_at"
    list_select_related = ["client"]
    actions = [
        "retry_jobs",
        "cancel_jobs",
        "reprocess_from_analysis",
        reprocess_with_template,
        "reprocess_from_transcription",
        "revoke_viewer_links",
    ]
    # webhooks/admin.py adds the job's webhook deliveries (jobs never imports webhooks).
    inlines = [JobEventInline]
    permission_codenames = {
        "retry": "retry_job",
        "cancel": "cancel_job",
        "reprocess": "reprocess_job",
        "revoke_viewer_links": "revoke_viewer_links",
    }
    readonly_fields = [
        "id",
        "status",
        "stage",
        "progress",
        "message",
        "client",
        "created_by",
        "external_id",
        "metadata",
        "audio",
        "original_filename",
        "audio_bytes",
        "audio_duration_seconds",
        "attempts",
        "step_retries",
        "redeliveries",
        "error_code",
        "error_message",
        "created_at",
        "started_at",
        "completed_at",
        "next_attempt_at",
        "heartbeat_at",
        "stage_timings",
        "transcription_provider",
        "transcript_external_id",
        "transcript_saved_at",
        "analysis_steps_done",
        "analysis_steps_failed",
        "prompt_tokens",
        "completion_tokens",
        "transcribed_seconds",
        "usage_table",
        "template",
        "analysis_template",
        "instructions",
        "participants",
        "vocabulary",
        "summary_language",
        "webhook_payload",
        "live_page",
    ]
    exclude = [
        "webhook_secret",
        "lease_task",
        "lease_expires",
        "run_started_at",
        "stage_started_at",
        "stage_seconds",
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = JobAddForm
        return super().get_form(request, obj, **kwargs)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.exclude if obj else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return JobAddForm.Meta.fields
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj else []

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj else []

    def save_model(self, request: HttpRequest, obj: Job, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.created_by = request.user
        obj.original_filename = obj.audio.name
        obj.audio_bytes = obj.audio.size
        submit_job(obj)

    @admin.display(description="Cost (USD)")
    def cost(self, obj: Job) -> str:
        return f"{job_usage(obj)['total_usd']:.4f}"

    @admin.display(description="Usage")
    def usage_table(self, obj: Job) -> str:
        usage = job_usage(obj)
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((name, value) for name, value in usage.items())
        )
        frozen = "priced when the job ended" if obj.is_terminal and obj.usage else "priced now"
        return format_html('<table class="usage">{}</table><p class="help">{}</p>', rows, frozen)

    @admin.display(description="Time per stage")
    def stage_timings(self, obj: Job) -> str:
        """This run's stages from the job's timing columns (no timeline query)."""
        spent = [
            (stage, f"{seconds:.1f} s") for stage, seconds in (obj.stage_seconds or {}).items()
        ]
        if not obj.is_terminal and obj.stage_started_at:
            current = (timezone.now() - obj.stage_started_at).total_seconds()
            spent.append((f"{obj.stage} (now)", f"{current:.1f} s"))
        if not spent:
            return "–"
        return format_html_join("", "<div>{}: {}</div>", spent)

    @admin.display(description="Live page")
    def live_page(self, obj: Job) -> str:
        return format_html('<a href="{}" target="_blank">Open the live page</a>', status_url(obj))

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Job], fn: Any, verb: str) -> None:
        done = sum(1 for job in queryset if fn(job))
        skipped = queryset.count() - done
        self.message_user(request, f"{verb}: {done} job(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} job(s) skipped: their state does not allow it.",
                messages.WARNING,
            )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return self.has_model_permission(request, "retry")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return self.has_model_permission(request, "cancel")

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return self.has_model_permission(request, "reprocess")

    def has_revoke_viewer_links_permission(self, request: HttpRequest) -> bool:
        return self.has_model_permission(request, "revoke_viewer_links")

    @admin.action(description="Retry selected failed or cancelled jobs", permissions=["retry"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._bulk(request, queryset, retry_job, "Retried")

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._bulk(request, queryset, cancel_job, "Cancelled")

    @admin.action(
        description="Reprocess from analysis (keep the transcript)", permissions=["reprocess"]
    )
    def reprocess_from_analysis(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._bulk(request, queryset, lambda j: reprocess_job(j, "analysis"), "Reprocessing")

    @admin.action(
        description="Reprocess from transcription (transcribe again)", permissions=["reprocess"]
    )
    def reprocess_from_transcription(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        missing: list[Job] = []

        def reprocess(job: Job) -> bool:
            try:
                return reprocess_job(job, "transcription")
            except AudioMissing:
                missing.append(job)
                return False

        self._bulk(request, queryset, reprocess, "Reprocessing")
        if missing:
            self.message_user(
                request,
                f"{len(missing)} job(s) have no recording on the server any more "
                "(reprocess them from analysis): " + ", ".join(str(j) for j in missing[:10]),
                messages.WARNING,
            )

    @admin.action(
        description="Revoke viewer links (status and results URLs) of selected jobs",
        permissions=["revoke_viewer_links"],
    )
    def revoke_viewer_links(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        # Every token carries the version it was signed with; bumping it voids
        # them all. The broadcast makes each open websocket re-check its token
        # now, so revoked viewers are dropped at once.
        count = queryset.update(viewer_token_version=F("viewer_token_version") + 1)
        for job_id in queryset.values_list("id", flat=True):
            broadcast_job(job_id)
        self.message_user(
            request,
            f"Revoked the viewer links of {count} job(s); new links are in each job's live page field.",
            messages.SUCCESS,
        )


@admin.register(ApiClient)
class ApiClientAdmin(ExplainedActionsMixin, admin.ModelAdmin):
    list_display = ["name", "key_prefix", "monthly_budget_usd", "created_at", "revoked_at"]
    fields = ["name", "key_prefix", "monthly_budget_usd", "this_month", "created_at", "revoked_at"]
    readonly_fields = ["key_prefix", "this_month", "created_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="This month")
    def this_month(self, obj: ApiClient) -> str:
        """The month's spend against the budget, and whether submissions are refused now."""
        if obj.pk is None:
            return "—"
        state = budget_state(obj)
        spent = state.spent_usd if state.budget_usd is not None else month_spend(obj)
        budget = f" of {state.budget_usd} USD" if state.budget_usd is not None else " (no budget)"
        refused = (
            format_html(
                ' <strong class="errornote">Budget exceeded: submissions answer 429 '
                "budget_exceeded until {} UTC; running jobs finish.</strong>",
                f"{state.resets_at:%Y-%m-%d %H:%M}",
            )
            if state.exceeded
            else ""
        )
        return format_html(
            '{} USD spent{}.{} <a href="{}">Usage by day</a>',
            f"{spent:.4f}",
            budget,
            refused,
            reverse("staff-usage", args=[obj.pk]),
        )

    permission_codenames = {"revoke": "revoke_apiclient"}

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self.has_model_permission(request, "revoke")

    def save_model(self, request: HttpRequest, obj: ApiClient, form: Any, change: bool) -> None:
        if not change:
            key = obj.issue_key()
            self.message_user(
                request,
                f"API key for {obj.name} (shown once, store it now): {key}",
                messages.WARNING,
            )
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected clients' keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} client(s).", messages.SUCCESS)
