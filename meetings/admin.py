"""Staff view of meetings with everything they contain."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from meetings.models import ActionItem, Decision, Meeting, Segment, Speaker
from meetings.serializers import ordered_sections


class SpeakerInline(admin.TabularInline):
    model = Speaker
    extra = 0
    fields = ["label", "name"]


class SpeakerFormSet(forms.BaseInlineFormSet):
    """A name staff type in stays: the analysis leaves renamed speakers alone."""

    def save_existing(self, form: Any, obj: Speaker, commit: bool = True) -> Speaker:
        if "name" in form.changed_data:
            obj.renamed_at = timezone.now()
        return super().save_existing(form, obj, commit=commit)


SpeakerInline.formset = SpeakerFormSet


class SegmentInline(admin.TabularInline):
    model = Segment
    extra = 0
    fields = ["index", "speaker", "start_ms", "end_ms", "text"]
    readonly_fields = ["index", "speaker", "start_ms", "end_ms"]

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).select_related("speaker")


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    extra = 0
    fields = ["text", "owner", "due_date", "source_start_ms"]


class DecisionInline(admin.TabularInline):
    model = Decision
    extra = 0
    fields = ["text", "source_start_ms"]


@admin.register(Meeting)
class MeetingAdmin(admin.ModelAdmin):
    list_display = ["__str__", "language", "duration_seconds", "degraded", "created_at"]
    search_fields = ["title", "summary", "job__external_id"]
    list_filter = ["language", "transcription_provider", "analysis_provider"]
    readonly_fields = [
        "job",
        "transcription_provider",
        "analysis_provider",
        "created_at",
        "degraded",
        "downloads",
        "detected_language",
        "template_sections",
    ]
    exclude = ["sections", "section_order"]
    inlines = [SpeakerInline, ActionItemInline, DecisionInline, SegmentInline]

    @admin.display(description="Downloads")
    def downloads(self, obj: Meeting) -> str:
        """The report and calendar downloads; a staff session needs no viewer token."""
        if obj.pk is None:
            return "—"
        links = [
            (reverse("meeting-report", args=[obj.pk, "pdf"]), "Report (PDF)"),
            (reverse("meeting-report", args=[obj.pk, "docx"]), "Report (Word)"),
            (reverse("meeting-action-items", args=[obj.pk]), "Action items (.ics)"),
            (reverse("meeting-page", args=[obj.pk]), "Results page"),
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description="Sections")
    def template_sections(self, meeting: Meeting) -> str:
        """The job template's sections, each with its items."""
        if not meeting.sections:
            return "—"
        return format_html_join(
            "",
            "<p><strong>{}</strong></p><ul>{}</ul>",
            (
                (
                    section["title"],
                    format_html_join(
                        "", "<li>{}</li>", ((item["text"],) for item in section["items"])
                    )
                    or format_html("<li>{}</li>", "None recorded."),
                )
                for section in ordered_sections(meeting).values()
            ),
        )
