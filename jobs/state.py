"""Low-level writes to a job's state: update, touch, claim, release, lock, fail.

Every write to a job's row goes through these functions (the business
actions in ``jobs.actions`` and the pipeline's steps build on them). Each
one records a `JobEvent`, and pushes the new state to websocket subscribers
only after the transaction commits.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.signals import post_save
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from jobs.broadcast import broadcast_job, broadcast_status, status_event
from jobs.errors import JobLost
from jobs.failures import public_message
from jobs.leases import lease_seconds
from jobs.models import Job, JobEvent
from jobs.providers import limits as ratelimit
from jobs.signals import job_finished, stage_ended
from jobs.usage import live_usage
from meeting_intel.lib.bulk import Write, perform, write_sql

logger = logging.getLogger(__name__)


Status = Job.Status
Stage = Job.Stage

# The pool of concurrent AssemblyAI transcriptions (see jobs.providers.limits).
TRANSCRIPTION_SLOTS = "assemblyai:transcriptions"

STAGE_PROGRESS = {
    Stage.QUEUED: 0,
    Stage.TRANSCRIBING: 5,
    Stage.ANALYZING: 50,
    Stage.SAVING: 90,
    Stage.NOTIFYING: 95,
    Stage.DONE: 100,
}


def record_event(job: Job, message: str) -> None:
    """Add a line to the job's timeline with its current status, stage and progress."""
    JobEvent.objects.create(
        job=job,
        status=job.status,
        stage=job.stage,
        progress=job.progress,
        attempt=job.attempts,
        message=message[:500],
    )


_EVENT_FIELDS = ("status", "stage", "progress", "attempts")


def write_with_event(
    rows: QuerySet[Job], fields: dict[str, Any], event: JobEvent, also: Sequence[Write] = ()
) -> int:
    """UPDATE `rows` (one job) with `fields` and, if it matched, INSERT `event`: one statement.

    Returns the rows updated. On PostgreSQL the UPDATE is a data-modifying
    CTE and the event is inserted from its RETURNING, so a state change is
    one round trip, and a write that matches nothing (a lost lease) records
    nothing. The event's `post_save` is sent as if it had been saved (the ops
    wiring logs transitions on it). Elsewhere, or when a field of the event
    comes from an SQL expression, it is the UPDATE and then the INSERT.

    `also`: writes of a step's results that land only with the job's write (a
    meeting's summary, the rows a step replaces): on PostgreSQL more CTEs of
    the same statement, each conditional on the job's UPDATE having matched;
    elsewhere, statements of their own after it. Hand-written SQL, since
    Django composes no statement of several writes; each piece is Django's own
    compiled UPDATE or DELETE.
    """
    connection = connections[rows.db]
    if connection.vendor != "postgresql" or any(
        hasattr(fields.get(name), "resolve_expression") for name in _EVENT_FIELDS
    ):
        with transaction.atomic(using=rows.db, savepoint=False):
            updated = rows.update(**fields)
            if updated == 1:
                event.save(using=rows.db)
                for write in also:
                    perform(write, rows.db)
        return updated
    query = rows.query.chain(UpdateQuery)
    query.add_update_values(fields)
    update_sql, update_params = query.get_compiler(rows.db).as_sql()
    table, pk = connection.ops.quote_name(Job._meta.db_table), Job._meta.pk.column
    columns = ("job_id", "created_at", "status", "stage", "progress", "attempt", "message")
    values = [getattr(event, name) for name in columns[1:]]
    riders, rider_params = [], []
    for i, write in enumerate(also):
        rider_sql, params = write_sql(write, 'EXISTS (SELECT 1 FROM "updated")', rows.db)
        riders.append(f', "also{i}" AS ({rider_sql})')
        rider_params.extend(params)
    sql = (
        f'WITH "updated" AS ({update_sql} RETURNING {table}."{pk}"){"".join(riders)} '
        f"INSERT INTO {connection.ops.quote_name(JobEvent._meta.db_table)} "
        f"({', '.join(columns)}) "
        f'SELECT "updated"."{pk}", {", ".join(["%s"] * len(values))} FROM "updated" '
        'RETURNING "id"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*update_params, *rider_params, *values))
        row = cursor.fetchone()
    if row is None:
        return 0
    event.id = row[0]
    event._state.adding, event._state.db = False, rows.db
    post_save.send(
        sender=JobEvent, instance=event, created=True, update_fields=None, raw=False, using=rows.db
    )
    return 1


def broadcast_after_commit(job_id: object) -> None:
    transaction.on_commit(lambda: broadcast_job(job_id))


def broadcast_row_after_commit(job: Job) -> None:
    """Push the row as it is now in memory once the transaction commits (no re-read)."""
    event = status_event(job)
    transaction.on_commit(lambda: broadcast_status(event))


def update_job(
    job: Job,
    message: str = "",
    *,
    holder: str | None = None,
    also: Sequence[Write] = (),
    **fields: Any,
) -> Job:
    """Set fields on a job, record the change, and broadcast it.

    With `holder` (the lease token of the step making the change) the write
    is conditional: it lands only while that step still holds the job's
    lease and the job is processing, else JobLost is raised and nothing is
    written. One UPDATE and one JobEvent, inside the caller's transaction
    when there is one; the broadcast is built from the row in memory.
    `message` becomes the job's last message and the event's text. `also`:
    writes of the step's results that land with it (see `write_with_event`).
    """
    if "stage" in fields and "progress" not in fields:
        fields["progress"] = max(STAGE_PROGRESS[fields["stage"]], job.progress)
    if message:
        fields["message"] = message[:300]
    now = fields["heartbeat_at"] = fields["updated_at"] = timezone.now()
    ended = _time_stages(job, fields, now)
    rows = Job.objects.filter(id=job.id)
    if holder is not None:
        rows = rows.filter(lease_task=holder, status=Status.PROCESSING)
    if fields.get("status") in Job.TERMINAL:
        # The bill of an ended job is priced once, from its final counters.
        final = copy.copy(job)
        for name, value in fields.items():
            setattr(final, name, value)
        fields["usage"] = live_usage(final)
    after = {name: fields.get(name, getattr(job, name)) for name in _EVENT_FIELDS}
    event = JobEvent(
        job=job,
        status=after["status"],
        stage=after["stage"],
        progress=after["progress"],
        attempt=after["attempts"],
        message=(message or f"{after['status']}/{after['stage']}")[:500],
    )
    if write_with_event(rows, fields, event, also) != 1 and holder is not None:
        raise JobLost(str(job.id))
    for name, value in fields.items():
        setattr(job, name, value)
    broadcast_row_after_commit(job)
    if ended is not None:
        transaction.on_commit(lambda: stage_ended.send_robust(sender=Job, job_id=job.id, **ended))
    return job


def _time_stages(job: Job, fields: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """Move the stage timing columns in `fields`; return what this write ends, if anything.

    A stage ends when the stage changes or the job ends; a write to an ended
    job starts a new run (a retry, a reprocess) unless it leaves it ended (a
    note). The columns are in the row in memory, so timing costs no query.
    """
    status, stage = fields.get("status", job.status), fields.get("stage", job.stage)
    if job.status in Job.TERMINAL:
        if status not in Job.TERMINAL:
            fields.update(run_started_at=now, stage_started_at=now, stage_seconds={})
        return None
    ends_run = status in Job.TERMINAL
    if stage == job.stage and not ends_run:
        return None
    seconds = max(0.0, (now - (job.stage_started_at or now)).total_seconds())
    totals = dict(job.stage_seconds or {})
    totals[job.stage] = round(totals.get(job.stage, 0) + seconds, 3)
    fields.update(stage_started_at=now, stage_seconds=totals)
    run_start = job.run_started_at or job.created_at
    return {
        "stage": job.stage,
        "seconds": seconds,
        "status": status,
        "run_seconds": max(0.0, (now - run_start).total_seconds()) if ends_run else None,
    }


def touch(job: Job, message: str, *, holder: str | None = None, **fields: Any) -> None:
    """Refresh the job's heartbeat, last message and `fields` without a timeline event.

    For routine waits and progress (a rate limit, a slot pool, chunks of one
    step) that would flood the timeline. With `holder`, conditional like
    update_job.
    """
    now = timezone.now()
    rows = Job.objects.filter(id=job.id)
    if holder is not None:
        rows = rows.filter(lease_task=holder, status=Status.PROCESSING)
    if not rows.update(message=message[:300], heartbeat_at=now, updated_at=now, **fields):
        if holder is not None:
            raise JobLost(str(job.id))
        return
    job.message = message[:300]
    for name, value in fields.items():
        setattr(job, name, value)
    broadcast_row_after_commit(job)


def lease_holder(task_id: str, celery_retries: int = 0) -> str:
    """The lease token of one run of a task.

    Celery keeps a task's id when it retries it (after a database or broker
    error), so the retry number is part of the token: a second run with the
    same token is a redelivery after a crash, a higher retry number is not.
    """
    return f"{task_id}#{celery_retries}" if celery_retries else task_id


def _same_task(holder: str) -> Q:
    task_id = holder.partition("#")[0]
    return Q(lease_task=task_id) | Q(lease_task__startswith=f"{task_id}#")


def claim(job: Job, holder: str, note: str = "", stage: str | None = None) -> Job | None:
    """Take the job's lease for one step, or return None if someone else holds it.

    `note`: the step's opening message (as `touch` would write it), set by the
    claim's statement unless the run starts (it then says "Attempt N started").
    `stage`: the stage the step works in, entered by the claim's statement.

    One conditional UPDATE is the claim (of two deliveries of the same step
    only one wins, and a cancel committed before it wins over it); it also
    marks the job processing. `job` is the row as read just before, so the
    result is built in memory. The same token finding its own lease means the
    message was delivered again after its worker died: that is counted, and
    past JOB_MAX_REDELIVERIES the job fails instead of looping forever.
    (On PostgreSQL a step task reads and claims in one statement instead:
    jobs.step_claim, with the same semantics.)
    """
    now = timezone.now()
    fields, starting, redelivered, ended = claim_fields(job, holder, note, now, stage)
    free = Q(lease_task="") | Q(lease_expires__lt=now) | _same_task(holder)
    if redelivered:
        fields["redeliveries"] = F("redeliveries") + 1
    rows = Job.objects.filter(id=job.id, status__in=Job.ACTIVE).filter(free)
    # A run that starts records its first timeline line in the claim's statement.
    recorded = starting and not redelivered
    if recorded:
        updated = write_with_event(rows, fields, start_event(job, fields))
    else:
        updated = rows.update(**fields)
    if updated != 1:
        return None
    return claimed(job, fields, redelivered, starting, recorded, bool(note), ended)


def claim_fields(
    job: Job, holder: str, note: str, now: datetime, stage: str | None = None
) -> tuple[dict[str, Any], bool, bool, dict[str, Any] | None]:
    """What a claim of `job` (the row as it was) writes, whether it starts a run,
    whether it is a redelivery (the holder finds its own lease), and the stage it
    ends if it enters `stage` (as `update_job` times stages)."""
    fields: dict[str, Any] = {
        "lease_task": holder,
        "lease_expires": now + timedelta(seconds=lease_seconds()),
        "heartbeat_at": now,
        "status": Status.PROCESSING,
        "next_attempt_at": None,
        "started_at": job.started_at or now,
        "attempts": job.attempts or 1,
        "updated_at": now,
    }
    starting = job.status != Status.PROCESSING
    if starting:
        fields["message"] = f"Attempt {fields['attempts']} started"
    elif note:
        fields["message"] = note[:300]
    ended = None
    if stage is not None and job.stage != stage:
        fields["stage"] = stage
        fields["progress"] = max(STAGE_PROGRESS[stage], job.progress)
        ended = _time_stages(job, fields, now)
    return fields, starting, job.lease_task == holder, ended


def start_event(job: Job, fields: dict[str, Any]) -> JobEvent:
    """The timeline line of a run that a claim starts."""
    return JobEvent(
        job=job,
        status=Status.PROCESSING,
        stage=fields.get("stage", job.stage),
        progress=fields.get("progress", job.progress),
        attempt=fields["attempts"],
        message=fields["message"],
    )


def claimed(
    job: Job,
    fields: dict[str, Any],
    redelivered: bool,
    starting: bool,
    recorded: bool,
    noted: bool,
    ended: dict[str, Any] | None = None,
) -> Job | None:
    """After a claim's statement landed: the row in memory follows it, and the
    redelivery limit, the first line of a run not recorded yet, the broadcast and
    the end of the stage the claim left (`ended`, from `claim_fields`)."""
    fields["redeliveries"] = job.redeliveries + (1 if redelivered else 0)
    for name, value in fields.items():
        setattr(job, name, value)
    if job.redeliveries > settings.JOB_MAX_REDELIVERIES:
        fail_job(
            job,
            "redelivery_limit",
            f"The job's task was delivered {job.redeliveries + 1} times without finishing; "
            "it may be crashing its worker.",
        )
        return None
    if starting and not recorded:
        record_event(job, job.message)
    if starting or noted or ended is not None:
        broadcast_row_after_commit(job)
    if ended is not None:
        transaction.on_commit(lambda: stage_ended.send_robust(sender=Job, job_id=job.id, **ended))
    return job


def release(
    job: Job,
    holder: str,
    due_in: float | None,
    *,
    set_due: bool = True,
    clear_retries: bool = False,
) -> None:
    """Give the lease back and record when the job's next step is due (None: not at all).

    `clear_retries`: the step succeeded, so its retry count starts again from 0.
    The row in memory follows.
    """
    fields: dict[str, Any] = {"lease_task": "", "lease_expires": None}
    if set_due:
        fields["due_at"] = (
            timezone.now() + timedelta(seconds=due_in) if due_in is not None else None
        )
    if clear_retries:
        fields["step_retries"] = 0
    if Job.objects.filter(id=job.id, lease_task=holder).update(**fields):
        for name, value in fields.items():
            setattr(job, name, value)


def released(job: Job, due_in: float | None) -> dict[str, Any]:
    """Fields that give the lease back in a step's last write and say when its next step
    is due (None: not at all), as `release` would, saving it a statement. The runner
    releases only a lease the row in memory still shows held."""
    fields: dict[str, Any] = {"lease_task": "", "lease_expires": None}
    fields["due_at"] = timezone.now() + timedelta(seconds=due_in) if due_in is not None else None
    if job.step_retries:
        fields["step_retries"] = 0
    return fields


def fence(job: Job, holder: str) -> None:
    """Right before a paid call: check the step still owns the job, and renew its lease.

    Raises JobLost when the job was cancelled, retried, reprocessed or claimed
    by another task meanwhile, so a stale step never pays for anything.
    """
    now = timezone.now()
    renewed = Job.objects.filter(id=job.id, lease_task=holder, status=Status.PROCESSING).update(
        lease_expires=now + timedelta(seconds=lease_seconds()), heartbeat_at=now
    )
    if renewed != 1:
        raise JobLost(str(job.id))


def fence_after_write(job: Job, holder: str) -> Callable[[], None]:
    """A guard (jobs.providers.base.guarded) for paid calls made right after a write
    conditional on the lease: that write is the check before the first request, and
    every further request is fenced."""
    checked = [True]

    def guard() -> None:
        if checked[0]:
            checked[0] = False
            return
        fence(job, holder)

    return guard


def lock_for_write(job: Job, task_id: str | None) -> Job:
    """Inside a transaction: re-read the job and check it is still ours to change.

    Raises JobLost when the job was cancelled, restarted, finished, or claimed
    by another task, so a stale step never overwrites newer state.
    """
    fresh = Job.objects.select_for_update().get(id=job.id)
    if task_id is None:
        if fresh.status not in Job.ACTIVE:
            raise JobLost(str(job.id))
    elif fresh.status != Status.PROCESSING or fresh.lease_task != task_id:
        raise JobLost(str(job.id))
    return fresh


def fail_job(job: Job, code: str, message: str) -> None:
    """Fail the job for good; `job_finished` is sent in the same transaction (its webhook)."""
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(id=job.id)
        if fresh.status in Job.TERMINAL:
            return
        logger.warning("job %s failed (%s): %s", fresh.id, code, message)
        update_job(
            fresh,
            f"Failed: {public_message(code)}",
            status=Status.FAILED,
            error_code=code,
            error_message=message,
            completed_at=timezone.now(),
            next_attempt_at=None,
            lease_task="",
            lease_expires=None,
        )
        job_finished.send(sender=Job, job=fresh, event="job.failed")
        release_slot_after_commit(fresh)


def release_slot_after_commit(job: Job) -> None:
    transaction.on_commit(lambda: ratelimit.release_slot(TRANSCRIPTION_SLOTS, str(job.id)))
