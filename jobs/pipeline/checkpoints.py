"""A chunk's answer as a checkpoint: one conditional UPDATE, no read, no row lock.

A long transcript is analysed in chunks, and each chunk's answer is kept in
``Job.analysis_partials`` ({step: {chunk index: answer}}) the moment it lands,
so a retry asks only for the chunks still missing. The write adds the one
answer inside the stored JSON (``jsonb_set`` on PostgreSQL, ``json_set`` on
SQLite) and the tokens it used to the job's counters, on the condition that
the step still holds the job's lease (as every state write: jobs.state): a
step that lost the job writes nothing and gets JobLost.

Hand-written: Django has no expression that sets one key inside a JSONField
(only lookups that read one), and a read-modify-write of the whole column
would need the row lock this avoids.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import F, Func, JSONField

from jobs.errors import JobLost
from jobs.models import Job


class _WithChunkAnswer(Func):
    """`analysis_partials` with `answer` set at [step][index] (missing levels created)."""

    def __init__(self, step: str, index: int, answer: Any) -> None:
        super().__init__(F("analysis_partials"), output_field=JSONField())
        self.step, self.index, self.answer = step, str(index), json.dumps(answer)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple[Any, ...]]:
        column, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            sql = (
                f"jsonb_set(COALESCE({column}, '{{}}'::jsonb), ARRAY[%s]::text[], "
                f"COALESCE({column} -> %s, '{{}}'::jsonb) || jsonb_build_object(%s::text, %s::jsonb), "
                "true)"
            )
            return sql, (*params, self.step, *params, self.step, self.index, self.answer)
        if connection.vendor == "sqlite":
            # SQLite's json_set creates the missing step object on its way.
            path = f"$.{json.dumps(self.step)}.{json.dumps(self.index)}"
            return f"json_set(COALESCE({column}, '{{}}'), %s, json(%s))", (
                *params,
                path,
                self.answer,
            )
        raise NotImplementedError(f"chunk checkpoints are not written for {connection.vendor}")


def save_chunk_answer(
    job: Job,
    holder: str,
    step: str,
    index: int,
    answer: Any,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Keep one chunk's answer and its tokens, in one statement; `job` is updated in memory.

    Raises JobLost when the step no longer holds the job's lease (cancelled,
    retried, handed over), writing nothing.
    """
    updated = Job.objects.filter(id=job.id, lease_task=holder, status=Job.Status.PROCESSING).update(
        analysis_partials=_WithChunkAnswer(step, index, answer),
        prompt_tokens=F("prompt_tokens") + prompt_tokens,
        completion_tokens=F("completion_tokens") + completion_tokens,
    )
    if updated != 1:
        raise JobLost(str(job.id))
    partials = dict(job.analysis_partials)
    partials[step] = {**partials.get(step, {}), str(index): answer}
    job.analysis_partials = partials
    job.prompt_tokens += prompt_tokens
    job.completion_tokens += completion_tokens
