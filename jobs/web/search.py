"""Search for people: the staff search page in admin, and a meeting's own search.

``/admin/search/`` (wrapped in ``admin.site.admin_view`` in the URLconf, and
needing the permission to view meetings) searches every meeting; each hit links to the results page at its moment.
``/meetings/{id}/search/`` answers the results page's "search by meaning"
as JSON, for staff or the holder of that meeting's viewer token, over that
one meeting only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from jobs.search import Links, embed_query, hit_data
from jobs.web.access import viewable_job
from meeting_intel.http.errors import ApiError, error_body
from meeting_intel.lib.admin_permissions import permission_label, refusal
from meetings.models import Meeting
from meetings.search import hybrid
from meetings.search.query import MAX_QUERY_CHARS, MODES, Filters

PAGE_SIZE = 25


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", max_length=MAX_QUERY_CHARS)
    mode = forms.ChoiceField(choices=[(m, m.capitalize()) for m in MODES], initial="hybrid")
    meeting = forms.UUIDField(label="Meeting id", required=False)
    speaker = forms.CharField(max_length=120, required=False)
    since = forms.DateField(required=False, help_text="YYYY-MM-DD")
    until = forms.DateField(required=False, help_text="YYYY-MM-DD, included")
    page = forms.IntegerField(min_value=1, max_value=1000, required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "Must not be before since.")
        return data

    def filters(self) -> Filters:
        data = self.cleaned_data

        def moment(day: date | None, *, next_day: bool = False) -> datetime | None:
            if not day:
                return None
            start = datetime.combine(day, time.min, tzinfo=UTC)
            if next_day:
                return start + timedelta(days=1) if day < date.max else None
            return start

        return Filters(
            meeting_ids=(str(data["meeting"]),) if data.get("meeting") else (),
            speaker=data.get("speaker") or "",
            since=moment(data.get("since")),
            until=moment(data.get("until"), next_day=True),
        )


def staff_search(request: HttpRequest) -> HttpResponse:
    """Every meeting's transcripts, for staff who may view meetings (``meetings.view_meeting``)."""
    if not request.user.has_perm("meetings.view_meeting"):
        label = permission_label("meetings", "view_meeting")
        raise PermissionDenied(refusal(label, "search meetings"))
    form = SearchForm(request.GET or None)
    context: dict[str, Any] = {"form": form, "hits": None, "title": "Search meetings"}
    if form.is_valid():
        page = form.cleaned_data.get("page") or 1
        try:
            found = hybrid.search(
                Meeting.objects.all(),
                form.cleaned_data["q"],
                form.cleaned_data["mode"],
                form.filters(),
                embed_query,
                offset=(page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
            )
        except ApiError as exc:
            context["problem"] = str(exc.detail)
        else:
            links = Links.for_hits(found.hits)
            query = request.GET.copy()
            query.pop("page", None)
            context.update(
                hits=[hit_data(h, links) for h in found.hits],
                total=found.total,
                page=page,
                previous_page=page - 1 if page > 1 else None,
                next_page=page + 1 if page * PAGE_SIZE < found.total else None,
                query=query.urlencode(),
            )
    return render(request, "admin/search.html", context)


@require_safe
def meeting_search(request: HttpRequest, meeting_id: object) -> JsonResponse:
    meeting = get_object_or_404(Meeting, id=meeting_id)
    viewable_job(request, meeting.job_id)
    q = request.GET.get("q", "").strip()
    mode = request.GET.get("mode", "hybrid")
    if not q or len(q) > MAX_QUERY_CHARS or mode not in MODES:
        message = "Give q (up to 500 characters) and a mode: keyword, semantic or hybrid."
        return JsonResponse(error_body("invalid_request", message), status=400)
    scope = Meeting.objects.filter(id=meeting.id)
    try:
        found = hybrid.search(scope, q, mode, Filters(), embed_query, limit=PAGE_SIZE)
    except ApiError as exc:
        return JsonResponse(error_body(exc.error_code, str(exc.detail)), status=exc.status_code)
    # The page already holds the token: hits seek within it, so no links.
    results = [hit_data(h, None) for h in found.hits]
    return JsonResponse({"count": found.total, "results": results})
