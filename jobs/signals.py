"""What jobs tells the rest of the project, without importing it.

``job_finished`` is sent with ``job`` (the locked, fresh row) and ``event``
(``"job.completed"`` or ``"job.failed"``) inside the transaction that gives
the job its terminal state, so whatever a receiver writes commits or rolls
back with that state. A receiver that raises aborts the transition. The
webhooks app receives it to write its outbox (``webhooks/apps.py``).
"""

from __future__ import annotations

from django.dispatch import Signal

job_finished = Signal()
