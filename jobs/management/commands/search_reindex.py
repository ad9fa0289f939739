"""``python manage.py search_reindex [--all]``: build meetings' semantic search index.

For meetings saved before search existed, after switching the analysis
provider (a query is only compared with passages of its own embedding
model), or to retry a degraded index without re-running the analysis.
Without ``--all`` only meetings that have no index are done.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from jobs.errors import Deferred, PipelineError
from jobs.models import Job
from jobs.pipeline.index import DEGRADED_NAME, DONE
from jobs.providers import get_embedder
from meetings.models import Meeting
from meetings.search import passages


class Command(BaseCommand):
    help = "Build the semantic search index of meetings without one (--all: of every meeting)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--all", action="store_true", help="Rebuild every meeting's index.")

    def handle(self, *args: Any, **options: Any) -> None:
        embedder = get_embedder()
        meetings = Meeting.objects.order_by("created_at")
        if not options["all"]:
            meetings = meetings.filter(search_indexed_at__isnull=True)
        done = failed = 0
        for meeting in meetings.iterator():
            try:
                count = self._index(meeting, embedder)
            except PipelineError as exc:
                failed += 1
                self.stderr.write(f"{meeting.id}: not indexed: {exc.message}")
                continue
            done += 1
            self.stdout.write(f"{meeting.id}: {count} passages")
        self.stdout.write(f"Indexed {done} meetings with {embedder.name}; {failed} failed.")

    def _index(self, meeting: Meeting, embedder: Any) -> int:
        while True:
            try:
                count = passages.build_index(
                    meeting, lambda texts: embedder.embed(texts).vectors, embedder.name
                )
                break
            except Deferred as exc:  # the shared rate limit: wait our turn
                time.sleep(min(exc.seconds, 60))
        if DEGRADED_NAME in meeting.degraded:
            meeting.degraded = [d for d in meeting.degraded if d != DEGRADED_NAME]
            meeting.save(update_fields=["degraded", "updated_at"])
        Job.objects.filter(id=meeting.job_id).update(search_index=DONE)
        return count
