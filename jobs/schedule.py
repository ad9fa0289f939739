"""Registers the periodic tasks in django-celery-beat's database after migrate."""

from __future__ import annotations

from typing import Any

PERIODIC_TASKS = {
    # name: (task, every N seconds)
    "Sweep stuck jobs": ("jobs.sweep", 60),
    "Send due webhooks": ("webhooks.sweep", 60),
}


def register_periodic_tasks(**_: Any) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, (task, seconds) in PERIODIC_TASKS.items():
        every, _ = IntervalSchedule.objects.get_or_create(
            every=seconds, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": every, "enabled": True}
        )
