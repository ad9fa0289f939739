"""The results page `/meetings/{id}/`."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from jobs.views import viewable_job

from .models import Meeting
from .serializers import with_results


def meeting_page(request: HttpRequest, meeting_id: object) -> HttpResponse:
    meeting = get_object_or_404(with_results(Meeting.objects.select_related("job")), id=meeting_id)
    job, token = viewable_job(request, meeting.job_id)
    return render(
        request,
        "meetings/meeting.html",
        {
            "meeting": meeting,
            "job": job,
            "token": token,
            "segments": meeting.segments.all(),
            "speakers": meeting.speakers.all(),
        },
    )
