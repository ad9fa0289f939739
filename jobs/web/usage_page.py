"""The staff usage page, `/admin/usage/{client}/?month=YYYY-MM`: one client's
month of jobs and cost, with a server-rendered chart of daily cost and jobs.

The chart is inline SVG computed here (bars for cost, a line for jobs), so
the page needs no script, no chart library and no CDN. The view is wrapped
in `admin.site.admin_view` in the URLconf (staff login); it also needs the
permissions to view clients and jobs.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from jobs.budgets import budget_state, month_jobs, month_spend, month_start, next_month_start
from jobs.models import ApiClient

CHART_WIDTH, CHART_HEIGHT = 760, 240
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 56, 44, 16, 28


@dataclass
class Day:
    day: int
    jobs: int = 0
    cost: Decimal = Decimal(0)
    audio_seconds: float = 0.0
    tokens: int = 0


def _month(value: str | None) -> datetime:
    if not value:
        return month_start(timezone.now())
    try:
        parsed = datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise Http404("month must look like 2026-03") from None
    return parsed.replace(tzinfo=UTC)


def month_days(client: ApiClient, month: datetime) -> list[Day]:
    days = [Day(d) for d in range(1, calendar.monthrange(month.year, month.month)[1] + 1)]
    for job, usage in month_jobs(client, month):
        day = days[job.created_at.astimezone(UTC).day - 1]
        day.jobs += 1
        day.cost += Decimal(str(usage["total_usd"]))
        day.audio_seconds += usage["audio_seconds"]
        day.tokens += usage["prompt_tokens"] + usage["completion_tokens"]
        day.tokens += usage["embedding_tokens"]
    return days


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `value` (an axis top)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value)


def chart(days: list[Day]) -> dict[str, Any]:
    """Coordinates for the SVG: one bar per day (cost), a polyline (jobs), axis ticks."""
    plot_w = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_h = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    cost_top = _nice_ceiling(float(max((d.cost for d in days), default=0)))
    jobs_top = _nice_ceiling(max((d.jobs for d in days), default=0))
    slot = plot_w / len(days)
    bars, points, labels = [], [], []
    for i, d in enumerate(days):
        height = float(d.cost) / cost_top * plot_h
        x = PLOT_LEFT + i * slot
        bars.append(
            {
                "x": round(x + slot * 0.15, 1),
                "y": round(PLOT_TOP + plot_h - height, 1),
                "w": round(slot * 0.7, 1),
                "h": round(height, 1),
                "title": f"Day {d.day}: {d.cost:.4f} USD, {d.jobs} job(s)",
            }
        )
        cx = round(x + slot / 2, 1)
        points.append((cx, round(PLOT_TOP + plot_h - d.jobs / jobs_top * plot_h, 1)))
        if d.day == 1 or d.day % 5 == 0:
            labels.append({"x": cx, "text": d.day})
    ticks = [
        {
            "y": round(PLOT_TOP + plot_h - plot_h * f, 1),
            "cost": f"{cost_top * f:.2f}" if cost_top >= 1 else f"{cost_top * f:.4f}",
            "jobs": f"{jobs_top * f:g}",
        }
        for f in (0, 0.25, 0.5, 0.75, 1)
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": PLOT_LEFT,
        "right": CHART_WIDTH - PLOT_RIGHT,
        "bottom": PLOT_TOP + plot_h,
        "label_y": CHART_HEIGHT - 8,
        "bars": bars,
        "line": " ".join(f"{x},{y}" for x, y in points),
        "dots": [{"x": x, "y": y} for x, y in points],
        "labels": labels,
        "ticks": ticks,
    }


def _check_permission(request: HttpRequest) -> None:
    if not (
        request.user.has_perm("jobs.view_apiclient") and request.user.has_perm("jobs.view_job")
    ):
        raise PermissionDenied("Viewing usage needs the view permissions on API clients and jobs.")


def clients_page(request: HttpRequest) -> HttpResponse:
    """`/admin/usage/`: every client's spend this month against its budget."""
    _check_permission(request)
    now = timezone.now()
    rows = []
    for client in ApiClient.objects.order_by("name"):
        state = budget_state(client, now)
        rows.append(
            {
                "client": client,
                "spent": state.spent_usd
                if state.budget_usd is not None
                else month_spend(client, now),
                "budget": state.budget_usd,
                "exceeded": state.exceeded,
                "url": reverse("staff-usage", args=[client.pk]),
            }
        )
    return render(
        request,
        "admin/jobs/usage_clients.html",
        {"title": "Usage and cost", "month": month_start(now), "rows": rows},
    )


def usage_page(request: HttpRequest, client_id: int) -> HttpResponse:
    _check_permission(request)
    client = get_object_or_404(ApiClient, pk=client_id)
    month = _month(request.GET.get("month"))
    days = month_days(client, month)
    total = sum((d.cost for d in days), Decimal(0))
    previous = month_start(month - timedelta(days=1))
    base = reverse("staff-usage", args=[client.pk])
    return render(
        request,
        "admin/jobs/usage.html",
        {
            "title": f"Usage of {client.name}",
            "client": client,
            "month": month,
            "days": days,
            "total": total,
            "jobs": sum(d.jobs for d in days),
            "audio_hours": sum(d.audio_seconds for d in days) / 3600,
            "tokens": sum(d.tokens for d in days),
            "chart": chart(days),
            "budget": budget_state(client),
            "previous_url": f"{base}?month={previous:%Y-%m}",
            "next_url": f"{base}?month={next_month_start(month):%Y-%m}",
            "client_url": reverse("admin:jobs_apiclient_change", args=[client.pk]),
        },
    )
