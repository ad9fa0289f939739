from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery's autodiscovery imports only jobs/tasks.py: register the
        # retention task too.
        from django.conf import settings
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_save

        from jobs import retention  # noqa: F401
        from jobs.web.access import staff_logged_out, user_saved

        # Staff websockets close on logout and demotion (jobs/web/consumers.py).
        user_logged_out.connect(staff_logged_out, weak=False)
        post_save.connect(user_saved, sender=settings.AUTH_USER_MODEL, weak=False)
