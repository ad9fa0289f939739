"""Monthly spend per client, and the budget a submit is checked against.

A job counts in the calendar month (UTC) it was created in, at its usage
(frozen for ended jobs, live for running ones). A submit is refused once the
month's spend has reached the client's `monthly_budget_usd`; the refusal
names the seconds until the month turns. Jobs already accepted are never
stopped by it: they finish and their cost lands in the month they started.
Two submits racing at the edge can both pass; the budget is a brake, not an
escrow.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import FloatField, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from jobs.models import ApiClient, Job
from jobs.usage import Usage, job_usage
from meeting_intel.lib import pricing

# What job_usage reads, so a month of jobs loads in one narrow query.
USAGE_FIELDS = (
    "id",
    "status",
    "created_at",
    "usage",
    "transcribed_seconds",
    "prompt_tokens",
    "completion_tokens",
    "embedding_tokens",
    "transcription_provider",
)


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: datetime) -> datetime:
    start = month_start(moment)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def _month(client: ApiClient, moment: datetime) -> QuerySet[Job]:
    return Job.objects.filter(
        client=client, created_at__gte=month_start(moment), created_at__lt=next_month_start(moment)
    )


def month_jobs(client: ApiClient, moment: datetime) -> Iterator[tuple[Job, Usage]]:
    """The client's jobs created in `moment`'s month (UTC), each with its usage, oldest first."""
    jobs = _month(client, moment).only(*USAGE_FIELDS).order_by("created_at")
    for job in jobs.iterator(chunk_size=2000):
        yield job, job_usage(job)


def month_spend(client: ApiClient, moment: datetime | None = None) -> Decimal:
    """The month's cost: ended jobs summed by the database from their frozen usage, the
    others (running, or ended before usage was recorded) priced here; every submit of a
    client with a budget asks, so a month of thousands of jobs is one aggregate."""
    jobs = _month(client, moment or timezone.now())
    frozen = Q(status__in=Job.TERMINAL, usage__has_key="total_usd")
    summed = jobs.filter(frozen).aggregate(total=Sum(Cast(KT("usage__total_usd"), FloatField())))[
        "total"
    ]
    rest = (job_usage(job)["total_usd"] for job in jobs.exclude(frozen).only(*USAGE_FIELDS))
    total = Decimal(str(summed or 0)) + sum((Decimal(str(usd)) for usd in rest), Decimal(0))
    return total.quantize(pricing.CENT_FRACTION)


@dataclass(frozen=True)
class BudgetState:
    budget_usd: Decimal | None
    spent_usd: Decimal
    resets_at: datetime

    @property
    def exceeded(self) -> bool:
        return self.budget_usd is not None and self.spent_usd >= self.budget_usd

    def retry_after(self, now: datetime) -> int:
        return max(1, math.ceil((self.resets_at - now).total_seconds()))


def budget_state(client: ApiClient, now: datetime | None = None) -> BudgetState:
    now = now or timezone.now()
    spent = month_spend(client, now) if client.monthly_budget_usd is not None else Decimal(0)
    return BudgetState(client.monthly_budget_usd, spent, next_month_start(now))
