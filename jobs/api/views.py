"""REST API for jobs: `/api/v1/jobs/…`. Clients see only their own jobs.

Another client's job answers 404, exactly like a job that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import shaping
from jobs.actions import cancel_job, reprocess_job, retry_job, submit_job
from jobs.api import idempotency
from jobs.api.auth import client_of
from jobs.api.serializers import (
    JobCreateSerializer,
    JobEventListSerializer,
    JobEventSerializer,
    JobSerializer,
    JobUrlCreateSerializer,
    ReprocessSerializer,
)
from jobs.api.templates import template_or_400
from jobs.budgets import budget_state
from jobs.errors import AudioMissing
from jobs.models import ApiClient, Job
from meeting_intel.http.body_limits import FormParser, JSONParser
from meeting_intel.http.errors import RETRY_AFTER, ApiError, error_responses, refuse_blank_query
from meeting_intel.lib.media import MediaInfo, MediaProblem, inspect_upload, safe_filename
from meeting_intel.lib.safe_http import UnsafeURL, check_url

IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    pattern=r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$",
    description="Any unique string (e.g. a UUID) of up to 255 characters. Sending the same "
    "request again with the same key answers the first response and creates no second job "
    "(for 24 hours); the same key with a different request answers 422.",
)


def client_jobs(request: Request) -> QuerySet[Job]:
    return Job.objects.filter(client=client_of(request)).select_related("meeting")


class JobCursorPagination(CursorPagination):
    """Newest first; the cursor survives jobs being added while a client pages."""

    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100

    def get_page_size(self, request: Request) -> int:
        # DRF falls back to the default for a malformed `limit` and clamps a
        # large one; the schema says an integer from 1 to max_page_size.
        given = request.query_params.get(self.page_size_query_param)
        valid = given is None or (
            given.isascii() and given.isdigit() and 1 <= int(given) <= self.max_page_size
        )
        if not valid:
            raise ApiError(
                400,
                "invalid_request",
                "The request is invalid.",
                {"limit": [f"An integer from 1 to {self.max_page_size} is required."]},
            )
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters

    def decode_cursor(self, request: Request) -> Any:
        # 404, as DRF answers: any string is a well-formed cursor, but only the
        # next/previous links name a page that exists.
        invalid = ApiError(
            404, "invalid_cursor", "No such page: use the next/previous links' cursors."
        )
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise invalid from None
        # A forged position would reach the database as a malformed timestamp.
        if cursor and cursor.position and not _is_datetime(cursor.position):
            raise invalid
        return cursor


def _is_datetime(value: str) -> bool:
    try:
        return parse_datetime(value) is not None
    except ValueError:
        return False


class JobFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Job.Status.choices, required=False)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    created_after = serializers.DateTimeField(
        required=False, help_text="Only jobs created at or after this time (ISO 8601)."
    )
    created_before = serializers.DateTimeField(
        required=False, help_text="Only jobs created before this time (ISO 8601)."
    )


def _refuse_unsafe_url(field: str, url: str | None) -> None:
    """422 for a URL the SSRF guard refuses; one that does not resolve yet is let through
    (the worker checks again, and retries, before it connects)."""
    if not url:
        return
    try:
        check_url(url)
    except UnsafeURL as exc:
        if not exc.transient:
            raise ApiError(
                422, "unsafe_url", f"{field} is not allowed: {exc.reason}", {field: exc.reason}
            ) from None


def _refuse_over_budget(client: ApiClient) -> None:
    """429 `budget_exceeded` once the month's spend reached the client's budget."""
    now = timezone.now()
    state = budget_state(client, now)
    if state.exceeded:
        wait = state.retry_after(now)
        raise ApiError(
            429,
            "budget_exceeded",
            f"This month's budget of {state.budget_usd} USD is used up "
            f"({state.spent_usd:.2f} USD spent); submissions resume when the month turns (UTC).",
            {
                "budget_usd": float(state.budget_usd or 0),
                "spent_usd": float(state.spent_usd),
                "resets_at": state.resets_at.isoformat(),
                "retry_after": wait,
            },
            retry_after=wait,
        )


class JobListCreate(generics.GenericAPIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    pagination_class = JobCursorPagination
    serializer_class = JobSerializer

    def get_queryset(self) -> QuerySet[Job]:
        return client_jobs(self.request)

    @extend_schema(
        operation_id="jobs_create",
        summary="Submit a recording",
        description="Multipart with an `audio` file, or JSON with `audio_url` (a urlencoded "
        "form works too). "
        "The file's content is checked: not audio/video → 415; empty, truncated or "
        "undecodable → 422; over the size limit → 413; past the client's monthly budget → 429 "
        "`budget_exceeded` with `Retry-After` until the month turns (UTC). An unknown "
        "`template` → 422 `template_not_found`. Nothing is stored for a refused request.",
        request={
            "multipart/form-data": JobCreateSerializer,
            "application/json": JobUrlCreateSerializer,
        },
        parameters=[IDEMPOTENCY_KEY, RETRY_AFTER],
        responses={201: JobSerializer, **error_responses(400, 404, 409, 413, 415, 422)},
    )
    def post(self, request: Request) -> Response:
        key = idempotency.key_from(request)
        # The schema documents multipart as the upload shape; a multipart form
        # that carries only audio_url (SPEC allows it) is read as the URL shape.
        multipart = (request.content_type or "").startswith("multipart/")
        by_url = multipart and "audio" not in request.FILES and "audio_url" in request.data
        shape = JobCreateSerializer if multipart and not by_url else JobUrlCreateSerializer
        serializer = shape(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        upload = data.pop("audio", None)
        info: MediaInfo | None = None
        if upload is not None:
            try:
                info = inspect_upload(upload)
            except MediaProblem as problem:
                raise ApiError(problem.status, problem.code, problem.message) from None
            upload.name = safe_filename(upload.name)
        _refuse_unsafe_url("audio_url", data.get("audio_url"))
        _refuse_unsafe_url("webhook_url", data.get("webhook_url"))
        client = client_of(request)
        template_ref = data.pop("template", "")
        template = template_or_400(client, template_ref)

        def create() -> tuple[Job, dict[str, Any]]:
            _refuse_over_budget(client)
            job = Job(client=client, **data)
            shaping.apply_template(job, template)
            if upload is not None:
                job.audio = upload
                job.original_filename = upload.name
                job.audio_bytes = upload.size
                job.audio_duration_seconds = info.duration_seconds if info else None
            submit_job(job)
            return job, JobSerializer(job).data

        if key is None:
            _, body = create()
            return Response(body, status=status.HTTP_201_CREATED)
        fingerprint = idempotency.fingerprint({**data, "template": template_ref}, upload)
        return idempotency.run_once(client, key, fingerprint, create)

    @extend_schema(
        operation_id="jobs_list",
        summary="List the client's jobs, newest first",
        parameters=[JobFilterSerializer, RETRY_AFTER],
        responses={200: JobSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        refuse_blank_query(
            request.query_params,
            ["status", "created_after", "created_before"],
            single=[*JobFilterSerializer().fields, "limit", "cursor"],
        )
        filters = JobFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        jobs = self.get_queryset()
        if "status" in wanted:
            jobs = jobs.filter(status=wanted["status"])
        if "external_id" in wanted:  # blank: the jobs submitted without one
            jobs = jobs.filter(external_id=wanted["external_id"])
        if "created_after" in wanted:
            jobs = jobs.filter(created_at__gte=wanted["created_after"])
        if "created_before" in wanted:
            jobs = jobs.filter(created_at__lt=wanted["created_before"])
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class JobDetail(generics.RetrieveAPIView):
    serializer_class = JobSerializer

    def get_queryset(self) -> QuerySet[Job]:
        return client_jobs(self.request)

    @extend_schema(
        operation_id="jobs_retrieve",
        summary="One job",
        parameters=[RETRY_AFTER],
        responses={200: JobSerializer, **error_responses(404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class JobEvents(APIView):
    @extend_schema(
        operation_id="jobs_events",
        summary="The job's timeline, oldest first",
        parameters=[RETRY_AFTER],
        responses={200: JobEventListSerializer, **error_responses(404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        job = get_object_or_404(client_jobs(request), pk=pk)
        return Response({"results": JobEventSerializer(job.events.all(), many=True).data})


class _JobAction(APIView):
    """POST …/{action}/: 200 with the job, or 409 when its state does not allow the action."""

    verb = ""

    def act(self, request: Request, job: Job) -> bool:
        raise NotImplementedError

    def post(self, request: Request, pk: str) -> Response:
        job = get_object_or_404(client_jobs(request), pk=pk)
        if not self.act(request, job):
            raise ApiError(
                409,
                "invalid_state",
                f"A {job.status} job cannot be {self.verb}.",
                {"status": job.status},
            )
        job = client_jobs(request).get(pk=job.pk)
        return Response(JobSerializer(job).data)


_ACTION_SCHEMA: dict[str, Any] = {
    "parameters": [RETRY_AFTER],
    "responses": {200: JobSerializer, **error_responses(404, 409)},
}


class JobRetry(_JobAction):
    verb = "retried (only failed or cancelled jobs can)"

    @extend_schema(
        operation_id="jobs_retry",
        summary="Run a failed or cancelled job again from its last checkpoint",
        request=None,
        **_ACTION_SCHEMA,
    )
    def post(self, request: Request, pk: str) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, job: Job) -> bool:
        return retry_job(job)


class JobCancel(_JobAction):
    verb = "cancelled (only pending, processing or retrying jobs can)"

    @extend_schema(
        operation_id="jobs_cancel",
        summary="Cancel an active job",
        request=None,
        **_ACTION_SCHEMA,
    )
    def post(self, request: Request, pk: str) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, job: Job) -> bool:
        return cancel_job(job)


class JobReprocess(_JobAction):
    verb = "reprocessed from there (it must be finished, and have a transcript for analysis)"

    @extend_schema(
        operation_id="jobs_reprocess",
        summary="Run a finished job again from transcription or from analysis",
        request=ReprocessSerializer,
        parameters=[RETRY_AFTER],
        responses={200: JobSerializer, **error_responses(400, 404, 409, 422)},
    )
    def post(self, request: Request, pk: str) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, job: Job) -> bool:
        body = ReprocessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = body.validated_data
        changes: dict[str, Any] = {}
        if "template" in wanted:
            shaped = Job()
            shaping.apply_template(shaped, template_or_400(job.client, wanted["template"]))
            changes.update(template=shaped.template, analysis_template=shaped.analysis_template)
        if "instructions" in wanted:
            changes["instructions"] = wanted["instructions"]
        try:
            return reprocess_job(job, wanted["from"], **changes)
        except AudioMissing:
            raise ApiError(
                409,
                "audio_missing",
                "The recording is no longer on the server, so the job cannot be transcribed "
                "again; reprocess from analysis instead.",
            ) from None
