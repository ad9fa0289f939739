"""Staff control of analysis templates: every client's, under the API's limits, and
reprocessing jobs' analysis with another template (SPEC "Shaping the analysis")."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from jobs import shaping
from jobs.actions import reprocess_job
from jobs.models import AnalysisTemplate, Job


class AnalysisTemplateForm(forms.ModelForm):
    """The API's limits (jobs.shaping) apply to staff's templates too."""

    class Meta:
        model = AnalysisTemplate
        fields = ["client", "name", "instructions", "sections", "is_default"]

    def _get_validation_exclusions(self) -> set[str]:
        # Making this template the default unsets the client's other one on
        # save, so "one default per client" is not a reason to refuse it.
        return {*super()._get_validation_exclusions(), "is_default"}

    def _checked(self, cleaner: Any, field: str) -> Any:
        try:
            return cleaner(self.cleaned_data.get(field))
        except shaping.ShapingProblem as problem:
            raise forms.ValidationError(str(problem)) from None

    def clean_name(self) -> str:
        return self._checked(shaping.clean_template_name, "name")

    def clean_instructions(self) -> str:
        return self._checked(shaping.clean_instructions, "instructions")

    def clean_sections(self) -> list[dict[str, str]]:
        return self._checked(shaping.clean_sections, "sections")


@admin.register(AnalysisTemplate)
class AnalysisTemplateAdmin(admin.ModelAdmin):
    """Staff manage every client's templates; a client manages its own over the API."""

    form = AnalysisTemplateForm
    list_display = ["name", "client", "is_default", "section_count", "updated_at"]
    list_filter = ["client", "is_default"]
    search_fields = ["name", "instructions", "client__name"]
    list_select_related = ["client"]

    @admin.display(description="Sections")
    def section_count(self, obj: AnalysisTemplate) -> int:
        return len(obj.sections or [])

    def save_model(
        self, request: HttpRequest, obj: AnalysisTemplate, form: Any, change: bool
    ) -> None:
        with transaction.atomic():
            if obj.is_default:
                AnalysisTemplate.objects.filter(client=obj.client, is_default=True).exclude(
                    id=obj.id
                ).update(is_default=False)
            super().save_model(request, obj, form, change)


@admin.action(description="Reprocess analysis with a template…", permissions=["reprocess"])
def reprocess_with_template(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[Job]
) -> TemplateResponse | None:
    """Ask which of the client's templates (or the built-in analysis), then re-run only
    the analysis of the selected jobs with it; the transcripts are kept."""
    clients = set(queryset.values_list("client_id", flat=True))
    if len(clients) != 1 or None in clients:
        modeladmin.message_user(
            request,
            "Select jobs of one API client: a template belongs to one client. Nothing was changed.",
            messages.WARNING,
        )
        return None
    templates = AnalysisTemplate.objects.filter(client_id=clients.pop()).order_by("name")
    if "apply" not in request.POST:
        return TemplateResponse(
            request,
            "admin/jobs/reprocess_template.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": "Reprocess analysis with a template",
                "jobs": queryset,
                "templates": templates,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": modeladmin.model._meta,
            },
        )
    ref = request.POST.get("template", "")
    template = templates.filter(id=ref).first() if ref else None
    if ref and template is None:
        modeladmin.message_user(
            request,
            "That template is not one of the client's. Nothing was changed.",
            messages.ERROR,
        )
        return None
    snapshot = Job()
    shaping.apply_template(snapshot, template)
    done = sum(
        1
        for job in queryset
        if reprocess_job(
            job, "analysis", template=template, analysis_template=snapshot.analysis_template
        )
    )
    name = template.name if template else "the built-in analysis"
    modeladmin.message_user(
        request, f"Reprocessing the analysis of {done} job(s) with {name}.", messages.SUCCESS
    )
    if queryset.count() > done:
        modeladmin.message_user(
            request,
            f"{queryset.count() - done} job(s) skipped: unfinished, or without a transcript.",
            messages.WARNING,
        )
    return None
