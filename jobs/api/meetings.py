"""REST API for meetings: `/api/v1/meetings/…`. Clients see only their own meetings."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.auth import client_of
from jobs.tokens import results_url
from meeting_intel.http.errors import RETRY_AFTER, error_responses
from meetings.exports import FORMATS, REPORTS, calendar_response, export_response, report_response
from meetings.models import Meeting, Speaker
from meetings.serializers import MeetingSerializer, SpeakerSerializer, with_results


def client_meetings(request: Request) -> QuerySet[Meeting]:
    return Meeting.objects.filter(job__client=client_of(request))


class MeetingDetail(generics.RetrieveAPIView):
    """The meeting with speakers, segments, action items and decisions, in a fixed number of queries."""

    serializer_class = MeetingSerializer

    def get_queryset(self) -> QuerySet[Meeting]:
        return with_results(client_meetings(self.request))

    @extend_schema(
        operation_id="meetings_retrieve",
        summary="One meeting",
        parameters=[RETRY_AFTER],
        responses={200: MeetingSerializer, **error_responses(404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SpeakerRename(APIView):
    @extend_schema(
        operation_id="meetings_speakers_partial_update",
        summary="Rename a speaker",
        description="The new name shows everywhere the speaker appears: the meeting, its "
        "segments, exports and pages. Action items owned under the old name follow.",
        request=SpeakerSerializer,
        parameters=[RETRY_AFTER],
        responses={200: SpeakerSerializer, **error_responses(400, 404)},
    )
    def patch(self, request: Request, pk: str, label: str) -> Response:
        meeting = get_object_or_404(client_meetings(request), pk=pk)
        if "\x00" in label:  # no such label, and PostgreSQL refuses NUL in a query
            raise Http404
        speaker = get_object_or_404(Speaker, meeting=meeting, label=label)
        serializer = SpeakerSerializer(speaker, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class DownloadView(APIView):
    """A view whose body is a file whatever the client accepts; only errors are JSON."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)


class TranscriptExport(DownloadView):
    @extend_schema(
        operation_id="meetings_transcript",
        summary="The transcript as txt, srt, vtt or md",
        description="A download (`Content-Disposition: attachment`) with speaker names where "
        "known (else `Speaker A`) and timestamps (`00:00:01,234` in SRT, `00:00:01.234` in VTT).",
        parameters=[
            OpenApiParameter("fmt", OpenApiTypes.STR, OpenApiParameter.PATH, enum=sorted(FORMATS)),
            RETRY_AFTER,
        ],
        responses={
            (200, f"{export.content_type}"): OpenApiResponse(
                OpenApiTypes.STR, description=f"The transcript as {fmt}."
            )
            for fmt, export in FORMATS.items()
        }
        | error_responses(404),
    )
    def get(self, request: Request, pk: str, fmt: str) -> HttpResponse:
        meeting = get_object_or_404(with_results(client_meetings(request)), pk=pk)
        return export_response(meeting, fmt)


class ReportExport(DownloadView):
    @extend_schema(
        operation_id="meetings_report",
        summary="The meeting report as docx or pdf",
        description="A download with the title, date, duration, speakers and their share of "
        "talk time, summary, template sections, action items (owner, due date, time), "
        "decisions and the transcript by speaker turn with timestamps.",
        parameters=[
            OpenApiParameter("fmt", OpenApiTypes.STR, OpenApiParameter.PATH, enum=sorted(REPORTS)),
            RETRY_AFTER,
        ],
        responses={
            (200, report.content_type): OpenApiResponse(
                OpenApiTypes.BINARY, description=f"The report as {fmt}."
            )
            for fmt, report in REPORTS.items()
        }
        | error_responses(404),
    )
    def get(self, request: Request, pk: str, fmt: str) -> HttpResponse:
        meeting = get_object_or_404(with_results(client_meetings(request)), pk=pk)
        return report_response(meeting, fmt)


class ActionItemsCalendar(DownloadView):
    @extend_schema(
        operation_id="meetings_action_items_ics",
        summary="The action items as an iCalendar file",
        description="One VTODO per action item: SUMMARY (the text), CONTACT (the owner), DUE "
        "(the due date, when known), URL (the results page at the item's moment, `#t=` "
        "seconds) and a UID that stays the same across exports, so re-importing updates.",
        parameters=[RETRY_AFTER],
        responses={
            (200, "text/calendar"): OpenApiResponse(
                OpenApiTypes.STR, description="An iCalendar (RFC 5545) file of VTODOs."
            ),
            **error_responses(404),
        },
    )
    def get(self, request: Request, pk: str) -> HttpResponse:
        meeting = get_object_or_404(
            client_meetings(request).select_related("job").prefetch_related("action_items"), pk=pk
        )
        return calendar_response(meeting, results_url(meeting.job, meeting.id) or "")
