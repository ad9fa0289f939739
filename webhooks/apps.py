from __future__ import annotations

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The outbox row is written by the job's terminal transaction itself;
        # jobs sends the signal and never imports webhooks.
        from jobs.signals import job_finished
        from webhooks.outbox import on_job_finished

        job_finished.connect(on_job_finished, dispatch_uid="webhooks.outbox")
