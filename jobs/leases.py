"""Keeping the leases of running steps alive, so a dead worker's lease expires fast.

A step's lease lasts JOB_LEASE_SECONDS and a daemon thread in each worker
process renews the leases of the steps running there every quarter of that.
A step that takes an hour (an upload, a local transcription) keeps its lease
for as long as its process lives; a SIGKILLed process stops renewing, so its
leases lapse within JOB_LEASE_SECONDS and the sweeper hands the jobs to a
living worker (instead of waiting for the task's hard time limit).

One thread per process, one UPDATE per round for all the steps it runs.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


def lease_seconds() -> float:
    return settings.JOB_LEASE_SECONDS


class _Renewer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._pid = 0
        self._wake = threading.Event()

    def hold(self, holder: str) -> None:
        with self._lock:
            self._held[holder] = self._held.get(holder, 0) + 1
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="lease-renewer", daemon=True).start()

    def drop(self, holder: str) -> None:
        with self._lock:
            left = self._held.get(holder, 0) - 1
            if left > 0:
                self._held[holder] = left
            else:
                self._held.pop(holder, None)

    def _run(self) -> None:
        from jobs.models import Job

        pid = os.getpid()
        while os.getpid() == pid:
            self._wake.wait(max(0.5, lease_seconds() / 4))
            with self._lock:
                held = list(self._held)
            if not held:
                continue
            try:
                Job.objects.filter(lease_task__in=held).update(
                    lease_expires=timezone.now() + timedelta(seconds=lease_seconds())
                )
            except Exception:
                # An outage: the steps meet it too and are retried; try again next round.
                logger.warning("could not renew %d job leases", len(held), exc_info=True)
            finally:
                # A round every few seconds: holding no connection in between keeps
                # one idle connection per process off the database.
                connection.close()


_renewer = _Renewer()
hold = _renewer.hold
drop = _renewer.drop
