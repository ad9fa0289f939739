"""What jobs tells the rest of the project, without importing it.

``job_finished`` is sent with ``job`` (the locked, fresh row) and ``event``
(``"job.completed"`` or ``"job.failed"``) inside the transaction that gives
the job its terminal state, so whatever a receiver writes commits or rolls
back with that state. A receiver that raises aborts the transition. The
webhooks app receives it to write its outbox (``webhooks/apps.py``).

``stage_ended`` is sent once the write that ends a job's stage commits, with
``job_id``, ``stage`` and ``seconds`` (how long the job was in it), ``status``
(the job's new status) and ``run_seconds`` (how long the run took, when that
write ended it; else None). The ops wiring feeds the duration histograms.

``job_read`` is sent with ``job`` when a step task has read the job's row
(``jobs.pipeline.runner.run_step``), so the ops wiring binds its stage,
attempt and webhook secret to the task's log context without a read of its
own: every step task (``jobs.pipeline.queue.STEP_TASK_NAMES``) sends it.
"""

from __future__ import annotations

from django.dispatch import Signal

job_finished = Signal()
stage_ended = Signal()
job_read = Signal()
