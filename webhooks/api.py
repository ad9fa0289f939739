"""REST API for a job's webhooks: the delivery log and redelivery.

`GET /api/v1/jobs/{id}/webhooks/` lists the job's deliveries, newest first,
each with its attempts. `POST /api/v1/jobs/{id}/webhooks/redeliver/` sends
the job's latest event again (or the one named by `delivery_id`, a
`webhook-id`) with the same webhook-id and body → 202. Clients see only
their own jobs (another client's job is a 404).
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.auth import client_of
from jobs.models import Job
from meeting_intel.http.errors import ApiError, error_responses
from webhooks.actions import redeliver
from webhooks.models import WebhookAttempt, WebhookDelivery


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "created_at", "status_code", "duration_ms", "error", "response_excerpt"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    id = serializers.CharField(
        source="webhook_id", help_text="The `webhook-id` header it is sent with."
    )
    attempts = WebhookAttemptSerializer(many=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_type",
            "url",
            "state",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
            "attempts",
        ]


class WebhookDeliveryListSerializer(serializers.Serializer):
    results = WebhookDeliverySerializer(many=True)


class _GivenCharField(serializers.CharField):
    """An optional text that, once given, may not be blank: DRF treats a blank
    form field as omitted, which here would redeliver the latest event instead
    of refusing the request the schema calls invalid (minLength 1)."""

    def get_value(self, dictionary):  # type: ignore[no-untyped-def]
        if self.field_name in dictionary and dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)


class RedeliverSerializer(serializers.Serializer):
    delivery_id = _GivenCharField(
        required=False, max_length=40, help_text="A delivery's id; default: the latest."
    )


def _client_job(request: Request, pk: str) -> Job:
    return get_object_or_404(Job.objects.filter(client=client_of(request)), pk=pk)


def _deliveries(job: Job) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(job=job)
        .order_by("-created_at", "-id")
        .prefetch_related(Prefetch("attempts", WebhookAttempt.objects.order_by("created_at", "id")))
    )


class JobWebhooks(APIView):
    @extend_schema(responses={200: WebhookDeliveryListSerializer, **error_responses(404)})
    def get(self, request: Request, pk: str) -> Response:
        job = _client_job(request, pk)
        return Response({"results": WebhookDeliverySerializer(_deliveries(job), many=True).data})


class JobWebhooksRedeliver(APIView):
    @extend_schema(
        request=RedeliverSerializer,
        responses={202: WebhookDeliveryListSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, pk: str) -> Response:
        job = _client_job(request, pk)
        serializer = RedeliverSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wanted = serializer.validated_data.get("delivery_id")
        deliveries = WebhookDelivery.objects.filter(job=job).order_by("-created_at", "-id")
        if wanted:
            delivery = deliveries.filter(webhook_id=wanted).first()
            if delivery is None:
                raise ApiError(404, "not_found", "This job has no delivery with that id.")
        else:
            delivery = deliveries.first() if job.is_terminal else None
            if delivery is None:
                raise ApiError(
                    409,
                    "no_webhook_event",
                    "This job has no webhook event to redeliver yet.",
                    {"status": job.status, "webhook_url_set": bool(job.webhook_url)},
                )
        redeliver(delivery)
        fresh = [d for d in _deliveries(job) if d.id == delivery.id]
        return Response(
            {"results": WebhookDeliverySerializer(fresh, many=True).data},
            status=status.HTTP_202_ACCEPTED,
        )
