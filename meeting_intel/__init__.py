from __future__ import annotations

from meeting_intel.celery import app as celery_app

__all__ = ("celery_app",)
