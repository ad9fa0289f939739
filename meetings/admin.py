"""Staff view of meetings with everything they contain."""

from __future__ import annotations

from django.contrib import admin

from meetings.models import ActionItem, Decision, Meeting, Segment, Speaker


class SpeakerInline(admin.TabularInline):
    model = Speaker
    extra = 0
    fields = ["label", "name"]


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
    ]
    inlines = [SpeakerInline, ActionItemInline, DecisionInline, SegmentInline]
