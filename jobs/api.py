"""REST API for jobs: `/api/v1/jobs/…`. Clients see only their own jobs."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .api_errors import ApiError
from .auth import client_of
from .media import safe_filename
from .models import Job
from .serializers import JobCreateSerializer, JobEventSerializer, JobSerializer, audio_problem
from .services import submit_job


def client_jobs(request: Request) -> QuerySet[Job]:
    return Job.objects.filter(client=client_of(request)).select_related("meeting")


class JobListCreate(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=JobCreateSerializer, responses={201: JobSerializer})
    def post(self, request: Request) -> Response:
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        upload = data.pop("audio")
        problem = audio_problem(upload)
        if problem:
            raise ApiError(*problem)
        upload.name = safe_filename(upload.name)
        job = submit_job(
            Job(
                client=client_of(request),
                audio=upload,
                original_filename=upload.name,
                audio_bytes=upload.size,
                **data,
            )
        )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: JobSerializer(many=True)})
    def get(self, request: Request) -> Response:
        jobs = client_jobs(request)
        if value := request.query_params.get("status"):
            jobs = jobs.filter(status=value)
        if value := request.query_params.get("external_id"):
            jobs = jobs.filter(external_id=value)
        return Response({"results": JobSerializer(jobs[:100], many=True).data})


class JobDetail(generics.RetrieveAPIView):
    serializer_class = JobSerializer

    def get_queryset(self) -> QuerySet[Job]:
        return client_jobs(self.request)


class JobEvents(APIView):
    @extend_schema(responses={200: JobEventSerializer(many=True)})
    def get(self, request: Request, pk: str) -> Response:
        job = get_object_or_404(client_jobs(request), pk=pk)
        return Response({"results": JobEventSerializer(job.events.all(), many=True).data})
