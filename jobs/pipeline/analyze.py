"""The analyze step: every pending analysis step over every chunk of the transcript.

Provider calls run concurrently on a thread pool; every database write
happens on the task's own thread, as each answer lands, so each chunk's
answer is a checkpoint and each step degrades on its own.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction

from jobs import shaping
from jobs.errors import Deferred, PermanentError, TransientError
from jobs.models import Job
from jobs.pipeline import answers, chunking
from jobs.providers import get_analyzer
from jobs.providers.analysis_steps import job_steps, pending_analysis, section_key, step_label
from jobs.providers.base import AnalysisContext, StepOutput
from jobs.state import lock_for_write, touch, update_job
from meetings import results as meeting_services
from meetings.models import Meeting
from meetings.transcript import Transcript

logger = logging.getLogger(__name__)


def analyze(job: Job, task_id: str) -> float | None:
    """Run the pending analysis steps over every chunk of the transcript, concurrently.

    Each chunk's answer is checkpointed when it lands; a step is merged and
    saved once all its chunks have answered, and degrades on its own when
    it cannot be answered. The task stops taking new work after
    ANALYSIS_TASK_BUDGET_SECONDS and continues in a fresh task.
    """
    meeting = Meeting.objects.get(job=job)
    transcript = meeting_services.load_transcript(meeting)
    chunks = chunking.split(transcript, settings.ANALYSIS_CHUNK_TOKENS)
    names = dict(meeting.speakers.values_list("label", "name"))
    shaped = shaping.context_for(job, meeting.language)
    context = answers.AnswerContext.of(transcript, names, [p.name for p in shaped.participants])
    run = _AnalysisRun(job, task_id, chunks, context, shaped)
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
        task_id: str,
        chunks: list[Transcript],
        context: answers.AnswerContext,
        shaped: AnalysisContext,
    ) -> None:
        self.job, self.task_id, self.chunks, self.context = job, task_id, chunks, context
        self.shaped = shaped
        self.steps = job_steps(job)
        self.analyzer = get_analyzer()
        self.deadline = time.monotonic() + settings.ANALYSIS_TASK_BUDGET_SECONDS
        self.transient: dict[str, TransientError] = {}
        self.deferred: list[Deferred] = []
        self.failed: set[str] = set()
        self.stopped_early = False

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
        if message == self.job.message and self.job.stage == Job.Stage.ANALYZING:
            # Still the same chunk: move the bar without another timeline event.
            touch(self.job, message, progress=progress)
            self.job.progress = progress
        else:
            update_job(self.job, message, stage=Job.Stage.ANALYZING, progress=progress)

    def execute(self) -> None:
        work = iter(self._todo())
        futures: dict[Future[StepOutput], tuple[str, int]] = {}
        with ThreadPoolExecutor(max_workers=settings.ANALYSIS_CONCURRENCY) as pool:

            def submit_next() -> None:
                if self.deferred or time.monotonic() > self.deadline:
                    self.stopped_early = True
                    return
                for step, index in work:
                    if step not in self.failed:
                        future = pool.submit(
                            self.analyzer.run, step, self.chunks[index], self.shaped
                        )
                        futures[future] = (step, index)
                        return

            for _ in range(settings.ANALYSIS_CONCURRENCY):
                submit_next()
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    step, index = futures.pop(future)
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
        except DatabaseError:
            logger.exception("the %s answer of job %s could not be saved", step, self.job.id)
            self._fail(step, "its answer could not be saved")

    def _fail(self, step: str, reason: str) -> None:
        """Degrade `step`; `reason` (exception text) goes to the log, not the timeline."""
        logger.warning("analysis step %s of job %s degraded: %s", step, self.job.id, reason)
        self.failed.add(step)
        with transaction.atomic():
            fresh = lock_for_write(self.job, self.task_id)
            partials = {k: v for k, v in fresh.analysis_partials.items() if k != step}
            update_job(
                fresh,
                f"{step_label(step)} unavailable: the analysis could not produce it",
                analysis_steps_failed=[*fresh.analysis_steps_failed, step],
                analysis_partials=partials,
            )
        self.job = fresh

    def _chunk_done(self, step: str, index: int, output: StepOutput) -> None:
        with transaction.atomic():
            fresh = lock_for_write(self.job, self.task_id)
            partials = dict(fresh.analysis_partials)
            partials[step] = {**partials.get(step, {}), str(index): output.data}
            fields = {
                "analysis_partials": partials,
                "prompt_tokens": fresh.prompt_tokens + output.prompt_tokens,
                "completion_tokens": fresh.completion_tokens + output.completion_tokens,
            }
            parts = [partials[step].get(str(i)) for i in range(len(self.chunks))]
            complete = all(part is not None for part in parts)
            if complete and (len(parts) == 1 or step != "summary"):
                data = parts[0] if len(parts) == 1 else chunking.merge(step, parts)
                self._save_step(fresh, step, answers.clean(step, data, self.context), fields)
            else:
                Job.objects.filter(id=fresh.id).update(**fields)
                for name, value in fields.items():
                    setattr(fresh, name, value)
        self.job = fresh
        if len(self.chunks) > 1:
            self.report()

    def _save_step(self, job: Job, step: str, data: dict[str, Any], fields: dict[str, Any]) -> None:
        meeting = Meeting.objects.get(job=job)
        key = section_key(step)
        if key is None:
            meeting_services.save_step(meeting, step, data)
        else:
            meeting_services.save_section(
                meeting,
                key,
                self.shaped.section(key).title,
                data["items"],
                [s.key for s in self.shaped.sections],
            )
        if meeting.analysis_provider != self.analyzer.name:
            meeting.analysis_provider = self.analyzer.name
            meeting.save(update_fields=["analysis_provider", "updated_at"])
        fields["analysis_partials"] = {
            k: v for k, v in fields["analysis_partials"].items() if k != step
        }
        done = [*job.analysis_steps_done, step]
        update_job(
            job,
            f"{step_label(step)} ready",
            analysis_steps_done=done,
            progress=max(job.progress, 50 + 35 * len(done) // len(self.steps)),
            **fields,
        )

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
        with transaction.atomic():
            fresh = lock_for_write(self.job, self.task_id)
            fields = {
                "analysis_partials": dict(fresh.analysis_partials),
                "prompt_tokens": fresh.prompt_tokens + tokens[0],
                "completion_tokens": fresh.completion_tokens + tokens[1],
            }
            data = answers.clean("summary", {"summary": summary}, self.context)
            self._save_step(fresh, "summary", data, fields)
        self.job = fresh

    def raise_pending_problems(self) -> None:
        if self.transient:
            waits = [e.retry_after for e in self.transient.values() if e.retry_after is not None]
            first = next(iter(self.transient.values()))
            raise TransientError(first.code, first.message, max(waits) if waits else None)
        if self.deferred:
            raise Deferred(max(d.seconds for d in self.deferred), self.deferred[0].reason)
        if self.stopped_early:
            raise Deferred(0.05, "Continuing analysis in a fresh task")


def _failed_future(exc: BaseException) -> Future[StepOutput]:
    future: Future[StepOutput] = Future()
    future.set_exception(exc)
    return future
