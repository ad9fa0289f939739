"""REST API for analysis templates: `/api/v1/templates/…`. A client sees only its own.

Another client's template answers 404, exactly like one that does not exist.
Deleting a template leaves the jobs that used it as they were: each job
keeps a snapshot of the template it was analysed with.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import shaping
from jobs.api.auth import client_of
from jobs.api.shaping import TemplateListSerializer, TemplateSerializer
from jobs.models import AnalysisTemplate
from meeting_intel.http.body_limits import JSONParser
from meeting_intel.http.errors import RETRY_AFTER, ApiError, error_responses


def client_templates(request: Request) -> QuerySet[AnalysisTemplate]:
    return AnalysisTemplate.objects.filter(client=client_of(request))


class TemplateListCreate(APIView):
    parser_classes = [JSONParser]  # a template is JSON: its sections are structured

    @extend_schema(
        operation_id="templates_list",
        summary="The client's analysis templates, by name",
        parameters=[RETRY_AFTER],
        responses={200: TemplateListSerializer, **error_responses()},
    )
    def get(self, request: Request) -> Response:
        templates = client_templates(request).order_by("name")
        return Response({"results": TemplateSerializer(templates, many=True).data})

    @extend_schema(
        operation_id="templates_create",
        summary="Create an analysis template",
        description="A job names a template by id or name (`template`), or gets the client's "
        f"default. At most {shaping.TEMPLATES_MAX} templates per client, "
        f"{shaping.SECTIONS_MAX} sections per template.",
        request=TemplateSerializer,
        parameters=[RETRY_AFTER],
        responses={201: TemplateSerializer, **error_responses(400, 409)},
    )
    def post(self, request: Request) -> Response:
        client = client_of(request)
        serializer = TemplateSerializer(data=request.data, context={"client": client})
        serializer.is_valid(raise_exception=True)
        if client_templates(request).count() >= shaping.TEMPLATES_MAX:
            raise ApiError(
                409,
                "too_many_templates",
                f"A client has at most {shaping.TEMPLATES_MAX} templates; delete one first.",
            )
        serializer.save()
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class TemplateDetail(APIView):
    parser_classes = [JSONParser]

    def _template(self, request: Request, pk: str) -> AnalysisTemplate:
        return get_object_or_404(client_templates(request), pk=pk)

    @extend_schema(
        operation_id="templates_retrieve",
        summary="One analysis template",
        parameters=[RETRY_AFTER],
        responses={200: TemplateSerializer, **error_responses(404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(TemplateSerializer(self._template(request, pk)).data)

    @extend_schema(
        operation_id="templates_partial_update",
        summary="Change an analysis template",
        description="Jobs already submitted keep the template as it was when they were.",
        request=TemplateSerializer,
        parameters=[RETRY_AFTER],
        responses={200: TemplateSerializer, **error_responses(400, 404, 409)},
    )
    def patch(self, request: Request, pk: str) -> Response:
        template = self._template(request, pk)
        serializer = TemplateSerializer(
            template, data=request.data, partial=True, context={"client": client_of(request)}
        )
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)

    @extend_schema(
        operation_id="templates_destroy",
        summary="Delete an analysis template",
        description="Jobs that used it keep their results and their snapshot of it.",
        parameters=[RETRY_AFTER],
        responses={204: None, **error_responses(404)},
    )
    def delete(self, request: Request, pk: str) -> Response:
        self._template(request, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


def template_or_400(client: Any, ref: str | None) -> AnalysisTemplate | None:
    """The template a submit or reprocess names (or the client's default).

    An unknown name or id, another client's template included, is a 422
    with code `template_not_found`: the request is well-formed, but names
    nothing the client has (a 404 would say the URL's object is missing).
    """
    try:
        return shaping.resolve_template(client, ref)
    except AnalysisTemplate.DoesNotExist:
        raise ApiError(
            422,
            "template_not_found",
            f"No template {ref!r}: give the id or name of one of your templates.",
            {"template": "No such template."},
        ) from None
