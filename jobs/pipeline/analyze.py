"""The analyze step: every pending analysis step over every chunk of the transcript.

Provider calls run concurrently on one thread pool per process, shared by
every analyze task the process runs: ANALYSIS_MAX_IN_FLIGHT bounds the model
calls in flight for the whole process, ANALYSIS_CONCURRENCY those of one job.
Every database write happens on the task's own thread, as each answer
lands, so each chunk's answer is a checkpoint and each step degrades on its
own. Each call is fenced right before it is handed to the pool: by
``jobs.state.fence``, or by the write conditional on the lease that kept the
answer landed just before it (the first calls go out together after one
check: the progress report's conditional write just before them, or a
fence); the further requests a call may make (a repair, a second ask) are
fenced from the pool's thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from jobs import shaping
from jobs.errors import INFRASTRUCTURE_ERRORS, Deferred, JobLost, PermanentError, TransientError
from jobs.models import Job
from jobs.pipeline import answers, checkpoints, chunking
from jobs.pipeline import index as search_index
from jobs.pipeline.finalize import complete
from jobs.providers import get_analyzer
from jobs.providers.analysis_steps import job_steps, pending_analysis, section_key, step_label
from jobs.providers.base import AnalysisContext, StepOutput, guarded
from jobs.state import fence, touch, update_job
from meetings import results as meeting_services
from meetings.models import Meeting
from meetings.transcript import Transcript

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0
_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def model_calls() -> ThreadPoolExecutor:
    """The process's pool of model calls in flight (created after a fork, once)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (
                os.getpid(),
                ThreadPoolExecutor(
                    max_workers=settings.ANALYSIS_MAX_IN_FLIGHT, thread_name_prefix="model-call"
                ),
            )
        return _pool[1]


class _CallGuard:
    """The fence of one model call: its first request was fenced by the task before
    the call was queued; any further request is fenced here, on the pool's thread,
    with a connection closed right after (such requests are rare, and pool threads
    must not each keep a database connection open)."""

    def __init__(self, job: Job, holder: str) -> None:
        self.job, self.holder, self.first = job, holder, True

    def __call__(self) -> None:
        if self.first:
            self.first = False
            return
        try:
            fence(self.job, self.holder)
        finally:
            connection.close()


def _call(
    analyzer: Any, step: str, chunk: Transcript, shaped: AnalysisContext, guard: _CallGuard
) -> StepOutput:
    with guarded(guard):
        return analyzer.run(step, chunk, shaped)


def analyze(job: Job, task_id: str) -> float | None:
    """Run the pending analysis steps over every chunk of the transcript, concurrently.

    Each chunk's answer is checkpointed when it lands; a step is merged and
    saved once all its chunks have answered, and degrades on its own when
    it cannot be answered. The task stops taking new work after
    ANALYSIS_TASK_BUDGET_SECONDS and continues in a fresh task.
    """
    # The row's cached relation: in a chain, the steps after the first (and the
    # completion's broadcast) reuse the meeting the first step read.
    meeting = job.meeting
    transcript, names = meeting_services.load_transcript_and_names(meeting)
    chunks = chunking.split(transcript, settings.ANALYSIS_CHUNK_TOKENS)
    shaped = shaping.context_for(job, meeting.language)
    context = answers.AnswerContext.of(transcript, names, [p.name for p in shaped.participants])
    run = _AnalysisRun(job, meeting, task_id, chunks, context, shaped)
    run.report()
    run.execute()
    run.reduce_summary()
    run.raise_pending_problems()
    return 0


class _AnalysisRun:
    """One analyze task's worth of work: (step, chunk) calls on a thread pool.

    Provider calls run on threads; every database write happens on the
    calling thread, as each answer lands.
    """

    def __init__(
        self,
        job: Job,
        meeting: Meeting,
        task_id: str,
        chunks: list[Transcript],
        context: answers.AnswerContext,
        shaped: AnalysisContext,
    ) -> None:
        self.job, self.meeting, self.task_id = job, meeting, task_id
        self.chunks, self.context = chunks, context
        self.shaped = shaped
        self.steps = job_steps(job)
        self.analyzer = get_analyzer()
        self.deadline = time.monotonic() + settings.ANALYSIS_TASK_BUDGET_SECONDS
        self.transient: dict[str, TransientError] = {}
        self.deferred: list[Deferred] = []
        self.failed: set[str] = set()
        self.stopped_early = False
        self.reported_at = 0.0
        # Whether a write conditional on the lease has just succeeded (it then
        # stands for the check before the next model call).
        self.checked = False
        # The meeting names its analysis provider once a step has landed; the
        # name rides on the next write of the meeting's row (see _provider_fields).
        self.provider_unsaved = bool(job.analysis_steps_done) and (
            meeting.analysis_provider != self.analyzer.name
        )

    def _todo(self) -> list[tuple[str, int]]:
        partials = self.job.analysis_partials
        return [
            (step, i)
            for step in pending_analysis(self.job)
            for i in range(len(self.chunks))
            if str(i) not in partials.get(step, {})
        ]

    def report(self) -> None:
        steps = pending_analysis(self.job)
        total = len(steps) * len(self.chunks)
        done = total - len(self._todo())
        if len(self.chunks) > 1:
            finished = sum(
                all(str(i) in self.job.analysis_partials.get(s, {}) for s in steps)
                for i in range(len(self.chunks))
            )
            message = f"Analyzing chunk {min(finished + 1, len(self.chunks))}/{len(self.chunks)}"
        else:
            message = f"Analyzing ({len(self.steps) - len(steps)}/{len(self.steps)} steps done)"
        steps_done = len(self.steps) - len(steps)
        progress = 50 + int(35 * (steps_done + done / len(self.chunks)) / len(self.steps))
        progress = max(self.job.progress, progress)
        if not self.reported_at and len(self.chunks) == 1 and self._follows_index(progress):
            # One chunk, right after the search index's checkpoint (in this task's
            # chain, or claimed just now): that write was conditional on the lease,
            # and "Search index ready" says where the job stands until a step lands
            # (a longer transcript reports chunk by chunk).
            self.reported_at = time.monotonic()
            self.checked = True
            return
        if self.reported_at and self.job.stage == Job.Stage.ANALYZING:
            # Progress only: no timeline event, and at most about one write a second.
            if time.monotonic() - self.reported_at < PROGRESS_INTERVAL_SECONDS:
                return
            touch(self.job, message, holder=self.task_id, progress=progress)
        else:
            update_job(
                self.job, message, holder=self.task_id, stage=Job.Stage.ANALYZING, progress=progress
            )
        self.reported_at = time.monotonic()
        self.checked = True  # the write was conditional on the lease

    def _follows_index(self, progress: int) -> bool:
        job = self.job
        return (
            job.stage == Job.Stage.ANALYZING
            and progress == job.progress
            and not job.analysis_steps_done
            and not job.analysis_partials
            and job.message.startswith(search_index.READY_NOTE)
        )

    def execute(self) -> None:
        todo = self._todo()
        work = iter(todo)
        futures: dict[Future[StepOutput], tuple[str, int]] = {}
        pool = model_calls()

        def submit_next() -> None:
            if self.deferred or time.monotonic() > self.deadline:
                self.stopped_early = True
                return
            for step, index in work:
                if step not in self.failed:
                    # Cancelled or handed over: pay nothing more. The write that
                    # just kept an answer was conditional on the lease, so it is
                    # that check; otherwise the lease is checked here.
                    if not self.checked:
                        fence(self.job, self.task_id)
                    self.checked = False
                    guard = _CallGuard(self.job, self.task_id)
                    future = pool.submit(
                        _call, self.analyzer, step, self.chunks[index], self.shaped, guard
                    )
                    futures[future] = (step, index)
                    return

        # The first calls go out together, after one check of the lease (the
        # report's conditional write, made just before, when there was one).
        if todo and not self.checked:
            fence(self.job, self.task_id)
        for _ in range(settings.ANALYSIS_CONCURRENCY):
            self.checked = True
            submit_next()
        self.checked = False
        while futures:
            finished, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in finished:
                step, index = futures.pop(future)
                self.checked = False
                self._land(step, index, future)
                submit_next()
        self.stopped_early = self.stopped_early and bool(self._todo())

    def _land(self, step: str, index: int, future: Future[StepOutput]) -> None:
        if step in self.failed:
            return
        try:
            output = future.result()
        except Deferred as exc:
            self.deferred.append(exc)
        except TransientError as exc:
            if self.job.step_retries < settings.JOB_MAX_RETRIES:
                self.transient[step] = exc
            else:
                self._fail(step, exc.message)
        except PermanentError as exc:
            self._fail(step, exc.message)
        except (JobLost, *INFRASTRUCTURE_ERRORS):
            raise
        except Exception as exc:
            logger.exception("analysis step %s of job %s crashed", step, self.job.id)
            self._fail(step, f"{type(exc).__name__}: {exc}")
        else:
            output = replace(output, data=answers.clean(step, output.data, self.context))
            self._saving(step, lambda: self._chunk_done(step, index, output))

    def _saving(self, step: str, save: Any) -> None:
        """Run `save`; an answer the database still refuses degrades its step alone."""
        try:
            save()
        except INFRASTRUCTURE_ERRORS:
            raise  # an outage: Celery retries the whole step (jobs.tasks)
        except DatabaseError:
            logger.exception("the %s answer of job %s could not be saved", step, self.job.id)
            self._fail(step, "its answer could not be saved")

    def _fail(self, step: str, reason: str) -> None:
        """Degrade `step`; `reason` (exception text) goes to the log, not the timeline."""
        logger.warning("analysis step %s of job %s degraded: %s", step, self.job.id, reason)
        self.failed.add(step)
        update_job(
            self.job,
            f"{step_label(step)} unavailable: the analysis could not produce it",
            holder=self.task_id,
            analysis_steps_failed=[*self.job.analysis_steps_failed, step],
            analysis_partials={k: v for k, v in self.job.analysis_partials.items() if k != step},
        )
        self._save_provider_unless_carried(step)

    def _chunk_done(self, step: str, index: int, output: StepOutput) -> None:
        """Checkpoint one chunk's answer; the step's last one saves the step instead.

        No read and no row lock: the step holds the job's lease, so the row
        in memory is the row, and every write is conditional on that lease.
        """
        parts = {**self.job.analysis_partials.get(step, {}), str(index): output.data}
        complete = all(str(i) in parts for i in range(len(self.chunks)))
        tokens = (output.prompt_tokens, output.completion_tokens)
        if complete and (len(parts) == 1 or step != "summary"):
            ordered = [parts[str(i)] for i in range(len(self.chunks))]
            data = ordered[0] if len(ordered) == 1 else chunking.merge(step, ordered)
            self._save_step(step, answers.clean(step, data, self.context), tokens)
        else:
            checkpoints.save_chunk_answer(self.job, self.task_id, step, index, output.data, *tokens)
        self.checked = True  # either write was conditional on the lease
        if len(self.chunks) > 1 and self.job.status != Job.Status.COMPLETED:
            self.report()

    def _save_step(self, step: str, data: dict[str, Any], tokens: tuple[int, int]) -> None:
        """Save one step's merged answer to the meeting and mark it done, in one transaction."""
        job, meeting = self.job, self.meeting
        with transaction.atomic():
            if meeting.analysis_provider != self.analyzer.name:
                self.provider_unsaved = True
            also = self._provider_fields(step)
            key = section_key(step)
            # A built-in step's writes ride in the checkpoint's own statement
            # (conditional on its lease).
            writes = []
            if key is None:
                writes = meeting_services.step_writes(meeting, step, data, also)
            else:
                meeting_services.save_section(
                    meeting,
                    key,
                    self.shaped.section(key).title,
                    data["items"],
                    [s.key for s in self.shaped.sections],
                    also,
                )
            done = [*job.analysis_steps_done, step]
            landing = {
                "analysis_steps_done": done,
                "progress": max(job.progress, 50 + 35 * len(done) // len(self.steps)),
                "analysis_partials": {k: v for k, v in job.analysis_partials.items() if k != step},
                "prompt_tokens": job.prompt_tokens + tokens[0],
                "completion_tokens": job.completion_tokens + tokens[1],
            }
            if self._completes(step):
                # The last answer: its checkpoint and the job's completion are one write.
                complete(job, self.task_id, landing, writes)
            else:
                update_job(
                    job, f"{step_label(step)} ready", holder=self.task_id, also=writes, **landing
                )
        if also:
            self.provider_unsaved = False

    def _completes(self, step: str) -> bool:
        """Whether `step`'s answer is the analysis's last: nothing else is pending."""
        rest = [s for s in pending_analysis(self.job) if s != step]
        return not (rest or self.transient or self.deferred or self.stopped_early)

    def _provider_fields(self, step: str) -> list[str]:
        """The fields `step`'s own UPDATE of the meeting carries: the analysis provider's
        name while it is unsaved, if the step writes that row (the summary and the template
        sections do). Another step leaves it to such a step still pending (in this run, or
        in the next, which finds it unsaved again), else writes it now, in its transaction."""
        if not self.provider_unsaved:
            return []
        self.meeting.analysis_provider = self.analyzer.name
        if _writes_meeting(step):
            return ["analysis_provider"]
        self._save_provider_unless_carried(step)
        return []

    def _save_provider_unless_carried(self, step: str) -> None:
        """Write the unsaved provider name unless a pending step other than `step` writes
        the meeting's row, and so will carry it."""
        pending = [s for s in pending_analysis(self.job) if s != step and s not in self.failed]
        if self.provider_unsaved and not any(_writes_meeting(s) for s in pending):
            self.meeting.analysis_provider = self.analyzer.name
            self.meeting.save(update_fields=["analysis_provider", "updated_at"])
            self.provider_unsaved = False

    def reduce_summary(self) -> None:
        """Summarise the chunk summaries (hierarchically if they are long)."""
        parts = self.job.analysis_partials.get("summary", {})
        if "summary" not in pending_analysis(self.job) or len(parts) < len(self.chunks):
            return
        texts = [parts[str(i)]["summary"] for i in range(len(self.chunks))]
        tokens = [0, 0]
        try:
            while len(texts) > 1:
                groups = chunking.split(
                    chunking.summaries_as_transcript(texts), settings.ANALYSIS_CHUNK_TOKENS
                )
                with guarded(lambda: fence(self.job, self.task_id)):
                    outputs = [self.analyzer.run("summary", group, self.shaped) for group in groups]
                tokens[0] += sum(o.prompt_tokens for o in outputs)
                tokens[1] += sum(o.completion_tokens for o in outputs)
                texts = [o.data["summary"] for o in outputs]
        except (TransientError, Deferred) as exc:
            self._land("summary", 0, _failed_future(exc))
            return
        except PermanentError as exc:
            self._fail("summary", exc.message)
            return
        self._saving("summary", lambda: self._save_summary(texts[0], tokens))

    def _save_summary(self, summary: str, tokens: list[int]) -> None:
        data = answers.clean("summary", {"summary": summary}, self.context)
        self._save_step("summary", data, (tokens[0], tokens[1]))

    def raise_pending_problems(self) -> None:
        if self.transient:
            waits = [e.retry_after for e in self.transient.values() if e.retry_after is not None]
            first = next(iter(self.transient.values()))
            raise TransientError(first.code, first.message, max(waits) if waits else None)
        if self.deferred:
            raise Deferred(max(d.seconds for d in self.deferred), self.deferred[0].reason)
        if self.stopped_early:
            raise Deferred(0.05, "Continuing analysis in a fresh task")


def _writes_meeting(step: str) -> bool:
    """Whether saving `step` UPDATEs the meeting's own row (meetings.results)."""
    return step == "summary" or section_key(step) is not None


def _failed_future(exc: BaseException) -> Future[StepOutput]:
    future: Future[StepOutput] = Future()
    future.set_exception(exc)
    return future
