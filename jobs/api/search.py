"""Search and ask across the client's meetings: ``/api/v1/search/``, ``/api/v1/ask/``.

The scope is decided here and nowhere else: a CMS client's own meetings
(staff tools pass every meeting; a viewer token passes its one meeting).
``meetings.search`` only ever narrows the scope it is given. The query is
embedded here (jobs owns the providers) and handed to it as a vector.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.auth import client_of
from jobs.search import Links, answer_question, embed_query, hit_data
from meeting_intel.http.errors import RETRY_AFTER, ApiError, error_responses, refuse_blank_query
from meetings.models import Meeting
from meetings.search import hybrid
from meetings.search.query import MAX_QUERY_CHARS, MODES, Filters

MAX_QUESTION_CHARS = 2000
MAX_MEETING_IDS = 100


@extend_schema_field(
    {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
)
class MomentField(serializers.Field):
    """An ISO 8601 date (the whole day) or date-time; naive values are UTC."""

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> datetime:
        text = str(data).strip()
        try:
            # A date alone first: parse_datetime would read it as midnight.
            day = parse_date(text) if len(text) == 10 else None
            moment = None if day else parse_datetime(text)
            if day is not None:
                moment = datetime.combine(day, time.min) + (
                    timedelta(days=1) if self.end_of_day else timedelta()
                )
            if moment is not None and not timezone.is_aware(moment):
                moment = moment.replace(tzinfo=UTC)
            if moment is not None:
                moment.astimezone(UTC)  # an offset that leaves the calendar overflows here
        except (ValueError, OverflowError):
            moment = None
        if moment is None:
            raise serializers.ValidationError("Use an ISO 8601 date (2025-01-06) or date-time.")
        return moment

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class SearchParams(serializers.Serializer):
    q = serializers.CharField(max_length=MAX_QUERY_CHARS, help_text="What to look for.")
    mode = serializers.ChoiceField(MODES, default="hybrid")
    meeting_id = serializers.UUIDField(required=False, help_text="Only this meeting.")
    speaker = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        help_text="A speaker's name or label (any case); blank for every speaker.",
    )
    since = MomentField(required=False, help_text="Meetings created at or after (ISO 8601).")
    until = MomentField(
        required=False,
        end_of_day=True,
        help_text="Meetings created before; a date includes its day.",
    )
    page = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=100, default=20)

    # `until` at or before `since` is an empty window: no hits, not an error
    # (the schema cannot say one parameter must follow another).


class HitSerializer(serializers.Serializer):
    meeting_id = serializers.UUIDField()
    job_id = serializers.UUIDField()
    title = serializers.CharField()
    start_ms = serializers.IntegerField()
    end_ms = serializers.IntegerField()
    speaker_name = serializers.CharField()
    text = serializers.CharField()
    highlight = serializers.CharField(help_text="`text` as escaped HTML, matches in `<mark>`.")
    score = serializers.FloatField(help_text="Higher is better; comparable within one search.")
    url = serializers.URLField(help_text="The results page at this moment.")


class AskRequest(serializers.Serializer):
    question = serializers.CharField(max_length=MAX_QUESTION_CHARS)
    meeting_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=MAX_MEETING_IDS
    )


class CitationSerializer(serializers.Serializer):
    meeting_id = serializers.UUIDField()
    start_ms = serializers.IntegerField()
    end_ms = serializers.IntegerField()
    speaker_name = serializers.CharField()
    text = serializers.CharField()
    url = serializers.URLField()


class AskResponse(serializers.Serializer):
    answer = serializers.CharField()
    citations = CitationSerializer(many=True)
    provider = serializers.CharField()
    answerable = serializers.BooleanField()
    extractive = serializers.BooleanField(help_text="True when the answer quotes passages as is.")


def scope_for(request: Request, meeting_ids: list[Any]) -> QuerySet[Meeting]:
    """The client's meetings, narrowed to `meeting_ids` when given; 404 for any not theirs."""
    scope = Meeting.objects.filter(job__client=client_of(request))
    if meeting_ids:
        wanted = {str(m) for m in meeting_ids}
        found = {str(m) for m in scope.filter(id__in=wanted).values_list("id", flat=True)}
        if found != wanted:
            raise ApiError(
                404, "not_found", "No such meeting.", {"meeting_ids": sorted(wanted - found)}
            )
        scope = scope.filter(id__in=wanted)
    return scope


def page_links(request: Request, page: int, size: int, total: int) -> tuple[str | None, str | None]:
    def at(number: int) -> str:
        query = request.query_params.copy()
        query["page"] = str(number)
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

    following = at(page + 1) if page * size < total else None
    previous = at(page - 1) if page > 1 else None
    return following, previous


class Search(APIView):
    @extend_schema(
        operation_id="search",
        summary="Search every meeting of the client",
        description="Hits best first: keyword (full-text, highlighted), semantic (by "
        "meaning, over passages of a few segments) or hybrid (both fused by reciprocal rank, "
        "the default). Semantic and hybrid page over the best 100.",
        parameters=[SearchParams, RETRY_AFTER],
        responses={
            200: inline_serializer(
                "SearchPage",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "mode": serializers.ChoiceField(MODES),
                    "results": HitSerializer(many=True),
                },
            ),
            **error_responses(400, 404, 502, 503),
        },
    )
    def get(self, request: Request) -> Response:
        refuse_blank_query(
            request.query_params, ["since", "until", "meeting_id"], single=SearchParams().fields
        )
        params = SearchParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        meeting_ids = [p["meeting_id"]] if p.get("meeting_id") else []
        scope = scope_for(request, meeting_ids)
        filters = Filters(
            meeting_ids=tuple(str(m) for m in meeting_ids),
            speaker=p.get("speaker", ""),
            since=p.get("since"),
            until=p.get("until"),
        )
        size = p["page_size"]
        found = hybrid.search(
            scope,
            p["q"],
            p["mode"],
            filters,
            embed_query,
            offset=(p["page"] - 1) * size,
            limit=size,
        )
        links = Links.for_hits(found.hits)
        following, previous = page_links(request, p["page"], size, found.total)
        return Response(
            {
                "count": found.total,
                "next": following,
                "previous": previous,
                "mode": p["mode"],
                "results": [hit_data(h, links) for h in found.hits],
            }
        )


class Ask(APIView):
    @extend_schema(
        operation_id="ask",
        summary="Ask a question across meetings",
        description="Retrieves the best passages (hybrid) of the client's meetings, or of "
        "`meeting_ids`, and answers from them alone. Every citation is a retrieved passage. "
        "Offline the answer is extractive (`extractive: true`). A question the passages "
        "cannot answer gets `answerable: false` and says so.",
        request=AskRequest,
        parameters=[RETRY_AFTER],
        responses={200: AskResponse, **error_responses(400, 404, 502, 503)},
    )
    def post(self, request: Request) -> Response:
        body = AskRequest(data=request.data)
        body.is_valid(raise_exception=True)
        scope = scope_for(request, body.validated_data.get("meeting_ids") or [])
        answer, cited, provider = answer_question(scope, body.validated_data["question"])
        links = Links.for_hits(cited)
        return Response(
            {
                "answer": answer.text,
                "citations": [
                    {
                        "meeting_id": h.meeting_id,
                        "start_ms": h.start_ms,
                        "end_ms": h.end_ms,
                        "speaker_name": h.speaker_name,
                        "text": h.text,
                        "url": links.url(h),
                    }
                    for h in cited
                ],
                "provider": provider,
                "answerable": answer.answerable and bool(cited),
                "extractive": answer.extractive,
            }
        )
