"""A step task's read of its job and its claim, in one statement on PostgreSQL.

A step task used to read the row (is this still the job's next step, is it
due?) and then claim it (``jobs.state.claim``): two round trips before any
work. Here the claim's conditional UPDATE carries the SQL form of the step's
preconditions (``jobs.pipeline.steps.next_step``), and the same statement
returns the row as it was before the claim, whether or not the claim landed.
So the runner decides as before from the row it got back (a stale message
does nothing, a step due later is rescheduled, a lease held by another task
drops the message) and the claim costs no statement of its own.

Why hand-written SQL: the ORM cannot express an UPDATE whose SET and
RETURNING read the row as it was (``UPDATE … FROM (SELECT … FOR NO KEY
UPDATE) old``, the lock the UPDATE takes anyway, so the row returned is the
one the claim saw), nor a statement that returns the row when the UPDATE
matched nothing. The values the claim derives from the old row (started_at,
attempts, the message, redeliveries, the timeline line of a run that starts)
are computed in SQL from the locked row, as ``jobs.state.claim_fields``
computes them in Python for the row in memory, which follows from the same
values.

Python keeps the last word: ``next_step`` is checked on the row returned;
when it disagrees with the SQL (a template section whose key is not a string,
say) a claim that landed is undone, and a claim that should have landed is
made by ``jobs.state.claim``. Elsewhere than PostgreSQL it is the read and
then ``jobs.state.claim``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models.signals import post_save
from django.db.models.sql import Query
from django.utils import timezone

from jobs.leases import lease_seconds
from jobs.models import Job, JobEvent
from jobs.providers.analysis_steps import ANALYSIS_STEPS, SECTION_PREFIX
from jobs.state import STAGE_PROGRESS, claim, claim_fields, claimed, start_event
from meetings.models import Meeting

Status = Job.Status

# The analysis steps that have neither landed nor failed exist (analysis_steps.pending_analysis).
_PENDING_ANALYSIS = (
    "EXISTS (SELECT 1 FROM unnest(ARRAY[{steps}]::text[] || ARRAY("
    "SELECT %s || (section.value ->> 'key') FROM jsonb_array_elements("
    "CASE WHEN jsonb_typeof(old.analysis_template -> 'sections') = 'array' "
    "THEN old.analysis_template -> 'sections' ELSE '[]'::jsonb END) AS section"
    ")) AS step(name) "
    "WHERE NOT (old.analysis_steps_done ? step.name OR old.analysis_steps_failed ? step.name))"
).format(steps=", ".join(["%s"] * len(ANALYSIS_STEPS)))
_PENDING_PARAMS = [*ANALYSIS_STEPS, SECTION_PREFIX]

_SAVED = "old.transcript_saved_at IS NOT NULL AND old.search_index <> ''"


def _poll(seq: int | None) -> tuple[str, list[Any]]:
    sql = "old.transcript_saved_at IS NULL AND old.transcript_external_id <> ''"
    if seq is None:
        return sql, []
    return f"{sql} AND old.transcript_polls = %s", [seq]


# The SQL form of `next_step(job) == step` for an active job, by step name
# (jobs.pipeline.steps; tests/jobs/test_step_claim.py checks every step has one).
PRECONDITIONS: dict[str, Callable[[int | None], tuple[str, list[Any]]]] = {
    "transcribe": lambda seq: (
        "old.transcript_saved_at IS NULL AND old.transcript_external_id = ''",
        [],
    ),
    "poll": _poll,
    "index": lambda seq: ("old.transcript_saved_at IS NOT NULL AND old.search_index = ''", []),
    "analyze": lambda seq: (f"{_SAVED} AND {_PENDING_ANALYSIS}", list(_PENDING_PARAMS)),
    "finalize": lambda seq: (f"{_SAVED} AND NOT {_PENDING_ANALYSIS}", list(_PENDING_PARAMS)),
}


class StepRead:
    """The job's row as a step task read it, and its claim (see `read_for_step`)."""

    def __init__(
        self,
        job: Job | None,
        holder: str,
        note: str,
        now: datetime | None,
        stage: str | None = None,
    ) -> None:
        self.job, self.holder, self.note, self.now = job, holder, note, now
        self.stage = stage
        # Set when the read's statement also claimed the job.
        self.landed = False
        self.event_id: int | None = None

    def claim(self) -> Job | None:
        """Take the lease for the step (the row passed the runner's checks), or None
        when someone else holds it: `jobs.state.claim`'s result."""
        job = self.job
        assert job is not None
        if not self.landed:
            if self.now is not None and not self._free(job):
                return None  # the statement found the lease held: nothing more to ask
            return claim(job, self.holder, self.note, self.stage)
        assert self.now is not None
        fields, starting, redelivered, ended = claim_fields(
            job, self.holder, self.note, self.now, self.stage
        )
        recorded = self.event_id is not None
        if recorded:
            event = start_event(job, fields)
            event.id, event.created_at = self.event_id, self.now
            event._state.adding, event._state.db = False, job._state.db
            post_save.send(
                sender=JobEvent,
                instance=event,
                created=True,
                update_fields=None,
                raw=False,
                using=job._state.db,
            )
        return claimed(job, fields, redelivered, starting, recorded, bool(self.note), ended)

    def give_back(self) -> None:
        """The runner will not run the step: undo a claim the statement made (rare: the
        SQL preconditions and `next_step` disagreed), leaving the row as it was read."""
        if not self.landed:
            return
        self.landed = False
        job = self.job
        assert job is not None
        restored = {name: getattr(job, name) for name in _CLAIMED_FIELDS}
        with transaction.atomic(using=job._state.db):
            Job.objects.filter(id=job.id, lease_task=self.holder, updated_at=self.now).update(
                **restored
            )
            if self.event_id is not None:
                JobEvent.objects.filter(id=self.event_id).delete()

    def _free(self, job: Job) -> bool:
        """The claim's conditions other than the step's on the row returned."""
        assert self.now is not None
        task_id = self.holder.partition("#")[0]
        return job.status in Job.ACTIVE and (
            job.lease_task == ""
            or (job.lease_expires is not None and job.lease_expires < self.now)
            or job.lease_task == task_id
            or job.lease_task.startswith(f"{task_id}#")
        )


_CLAIMED_FIELDS = (
    "lease_task",
    "lease_expires",
    "heartbeat_at",
    "status",
    "next_attempt_at",
    "started_at",
    "attempts",
    "updated_at",
    "message",
    "redeliveries",
    "stage",
    "progress",
    "stage_started_at",
    "stage_seconds",
)


def read_for_step(
    job_id: object, step: str, holder: str, note: str, seq: int | None, stage: str | None = None
) -> StepRead:
    """Read the job for `step` and, on PostgreSQL, claim it in the same statement when
    the step is due and the lease free (`jobs.state.claim` with `note` and `stage`);
    `job` is the row as it was before the claim (None: no such job)."""
    alias = router.db_for_write(Job)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return StepRead(Job.objects.filter(id=job_id).first(), holder, note, None, stage)
    now = timezone.now()
    pk = Job._meta.pk.get_db_prep_value(job_id, connection)
    with_meeting = step in WITH_MEETING
    sql, params = _statement(pk, step, holder, note, seq, now, with_meeting, stage)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return StepRead(None, holder, note, now, stage)
    count = len(Job._meta.concrete_fields)
    job = _instance(Job, alias, row[:count])
    read = StepRead(job, holder, note, now, stage)
    read.landed, read.event_id = row[count], row[count + 1]
    if with_meeting and row[count + 2] is not None:
        # The relation as `job.meeting` would have read it.
        meeting = _instance(Meeting, alias, row[count + 2 :])
        job._state.fields_cache["meeting"] = meeting
        meeting._state.fields_cache["job"] = job
    return read


# The steps that read the job's meeting: the statement returns it too.
WITH_MEETING = frozenset({"index", "analyze", "finalize"})


def _instance(model: type[Any], alias: str, row: Any) -> Any:
    fields = model._meta.concrete_fields
    values = list(row)
    connection = connections[alias]
    for position, converters, column in _converters(model, alias):
        for converter in converters:
            values[position] = converter(values[position], column, connection)
    return model.from_db(alias, [field.attname for field in fields], values)


@functools.cache
def _columns(model: type[Any] = Job, prefix: str = "") -> str:
    return ", ".join(f'{prefix}"{field.column}"' for field in model._meta.concrete_fields)


@functools.cache
def _converters(model: type[Any], alias: str) -> list[tuple[int, list[Any], Any]]:
    """The from_db_value converters of the row's fields (JSON), as the ORM applies them
    (bound to the fields, not to a connection: PostgreSQL's backend adds none)."""
    compiler = Query(model).get_compiler(using=alias)
    columns = [field.get_col(model._meta.db_table) for field in model._meta.concrete_fields]
    return [(i, convs, col) for i, (convs, col) in compiler.get_converters(columns).items()]


# A claim that enters the step's stage, timed as jobs.state._time_stages times it:
# the stage it leaves gets the seconds since it started.
_ENTER_STAGE = (
    ", stage = CASE WHEN old.stage <> %s THEN %s ELSE old.stage END"
    ", progress = CASE WHEN old.stage <> %s THEN GREATEST(old.progress, %s) ELSE old.progress END"
    ", stage_started_at = CASE WHEN old.stage <> %s THEN %s ELSE old.stage_started_at END"
    ", stage_seconds = CASE WHEN old.stage <> %s THEN jsonb_set("
    "COALESCE(old.stage_seconds, '{}'::jsonb), ARRAY[old.stage], to_jsonb(round("
    "COALESCE((old.stage_seconds ->> old.stage)::numeric, 0) + GREATEST(0, "
    "EXTRACT(EPOCH FROM (%s - COALESCE(old.stage_started_at, %s))))::numeric, 3))) "
    "ELSE old.stage_seconds END"
)


def _enter_stage_params(stage: str, now: datetime) -> list[Any]:
    progress, stage = STAGE_PROGRESS[stage], str(getattr(stage, "value", stage))
    return [stage, stage, stage, progress, stage, now, stage, now, now]


def _statement(
    job_id: object,
    step: str,
    holder: str,
    note: str,
    seq: int | None,
    now: datetime,
    with_meeting: bool = False,
    stage: str | None = None,
) -> tuple[str, list[Any]]:
    """The read-and-claim statement: the locked old row, the claim, the first line of
    a run that starts, and the old row with whether the claim landed and the line's id
    (`with_meeting`: and the job's meeting's row, NULLs when it has none)."""
    job_table, event_table = Job._meta.db_table, JobEvent._meta.db_table
    precondition, precondition_params = PRECONDITIONS[step](seq)
    task_id = holder.partition("#")[0]
    like = task_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "#%"
    attempts = "CASE WHEN old.attempts = 0 THEN 1 ELSE old.attempts END"
    message = "%s" if note else "old.message"
    active = ", ".join(["%s"] * len(Job.ACTIVE))
    sql = (
        f'WITH old AS (SELECT {_columns()} FROM "{job_table}" WHERE "id" = %s '
        "FOR NO KEY UPDATE), "
        f'claimed AS (UPDATE "{job_table}" AS job SET '
        "lease_task = %s, lease_expires = %s, heartbeat_at = %s, status = %s, "
        "next_attempt_at = NULL, started_at = COALESCE(old.started_at, %s), "
        f"attempts = {attempts}, updated_at = %s, "
        f"message = CASE WHEN old.status <> %s "
        f"THEN 'Attempt ' || CAST({attempts} AS text) || ' started' ELSE {message} END, "
        "redeliveries = old.redeliveries + CASE WHEN old.lease_task = %s THEN 1 ELSE 0 END"
        f"{_ENTER_STAGE if stage else ''} "
        f"FROM old WHERE job.id = old.id AND old.status IN ({active}) "
        "AND (old.lease_task = '' OR old.lease_expires < %s "
        "OR old.lease_task = %s OR old.lease_task LIKE %s) "
        "AND (old.next_attempt_at IS NULL OR old.next_attempt_at <= %s) "
        f"AND {precondition} "
        "RETURNING job.id, job.stage, job.progress, job.attempts, job.message, "
        "old.status <> %s AND old.lease_task <> %s AS record), "
        f'event AS (INSERT INTO "{event_table}" '
        "(job_id, created_at, status, stage, progress, attempt, message) "
        "SELECT id, %s, %s, stage, progress, attempts, message FROM claimed WHERE record "
        "RETURNING id) "
        f"SELECT {_columns(Job, 'old.')}, EXISTS (SELECT 1 FROM claimed), "
        "(SELECT id FROM event)"
    )
    if with_meeting:
        sql += (
            f", {_columns(Meeting, 'meeting.')} FROM old "
            f'LEFT JOIN "{Meeting._meta.db_table}" AS meeting ON meeting.job_id = old.id'
        )
    else:
        sql += " FROM old"
    processing = Status.PROCESSING.value
    params: list[Any] = [
        job_id,
        holder,
        now + timedelta(seconds=lease_seconds()),
        now,
        processing,
        now,
        now,
        processing,
        *([note[:300]] if note else []),
        holder,
        *(_enter_stage_params(stage, now) if stage else []),
        *(status.value for status in Job.ACTIVE),
        now,
        task_id,
        like,
        now,
        *precondition_params,
        processing,
        holder,
        now,
        processing,
    ]
    return sql, params
