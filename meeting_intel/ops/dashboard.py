"""The staff dashboard, `/admin/dashboard/`: counts by status, jobs in flight
with live progress, recent failures and webhook dead letters.

Both views are wrapped in `admin.site.admin_view` in the URLconf, so they get
the admin's staff check and login redirect.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from jobs.models import Job
from jobs.web.views import STATUS_LABELS, failure_explanation
from webhooks.models import WebhookDelivery

IN_FLIGHT_LIMIT = 50
RECENT_LIMIT = 20


def status_counts() -> list[dict[str, Any]]:
    """Every status with its total and its count over the last 24 hours, in lifecycle order."""
    since = timezone.now() - timedelta(hours=24)
    total = dict(Job.objects.values_list("status").annotate(n=Count("id")))
    recent = dict(
        Job.objects.filter(created_at__gte=since).values_list("status").annotate(n=Count("id"))
    )
    return [
        {
            "status": status,
            "label": STATUS_LABELS.get(status, status),
            "total": total.get(status, 0),
            "recent": recent.get(status, 0),
            "url": reverse("admin:jobs_job_changelist") + f"?status__exact={status}",
        }
        for status in Job.Status.values
    ]


def in_flight() -> list[dict[str, Any]]:
    jobs = Job.objects.filter(status__in=Job.ACTIVE).order_by("created_at")[:IN_FLIGHT_LIMIT]
    return [
        {
            "id": str(job.id),
            "title": str(job),
            "status": job.status,
            "stage": job.stage,
            "progress": job.progress,
            "message": job.message,
            "updated_at": job.updated_at.isoformat(),
            "page_url": reverse("job-page", args=[job.id]),
            "admin_url": reverse("admin:jobs_job_change", args=[job.id]),
        }
        for job in jobs
    ]


def dashboard(request: HttpRequest) -> HttpResponse:
    failed = Job.objects.filter(status=Job.Status.FAILED).order_by("-completed_at")
    dead = WebhookDelivery.objects.filter(state=WebhookDelivery.State.EXHAUSTED)
    delivery_list = reverse("admin:webhooks_webhookdelivery_changelist")
    return render(
        request,
        "admin/dashboard.html",
        {
            **admin.site.each_context(request),
            "title": "Operations dashboard",
            "counts": status_counts(),
            "in_flight": in_flight(),
            "failures": [
                (job, failure_explanation(job.error_code)) for job in failed[:RECENT_LIMIT]
            ],
            "failures_url": reverse("admin:jobs_job_changelist") + "?status__exact=failed",
            "dead_letters": dead.select_related("job")[:RECENT_LIMIT],
            "dead_letter_total": dead.count(),
            "dead_letters_url": f"{delivery_list}?state__exact={WebhookDelivery.State.EXHAUSTED}",
        },
    )


@never_cache
def dashboard_live(request: HttpRequest) -> HttpResponse:
    """What the dashboard refreshes without a reload: counts and jobs in flight."""
    return JsonResponse({"counts": status_counts(), "in_flight": in_flight()})
