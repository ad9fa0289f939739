"""Log lines an operator can search: JSON or text, with the job they belong to.

Every record passes through :class:`ContextFilter`, which adds

- ``role``: web, worker, beat, flower or manage (``PROCESS_ROLE``, else read from argv);
- ``job_id``, ``task_id``, ``task``, ``stage`` and ``attempt`` while a Celery task
  or a web request handles a job (see ``meeting_intel.ops.wiring``).

Both formatters mask secrets: the values of the secret settings, the job's
webhook secret, and anything shaped like a bearer token, an API key (``mip_``,
``sk-``) or a signing secret (``whsec_``), in messages and tracebacks alike.
``LOG_FORMAT`` picks the formatter (settings.py: json unless DEBUG).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

CONTEXT_FIELDS = ("job_id", "task_id", "task", "stage", "attempt")

# Per request / per task. Worker children run one task at a time on their main
# thread, so that task's context is also kept process-wide: threads the task
# starts (the analysis pool) do not inherit contextvars, but log for that task.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "meeting_intel_log_context", default=None
)
_task_context: dict[str, Any] = {}


def _detect_role() -> str:
    """PROCESS_ROLE if set, else what the command line says this process is."""
    role = os.environ.get("PROCESS_ROLE", "").strip()
    if role:
        return role
    argv = [os.path.basename(arg) for arg in sys.argv]
    program = argv[0] if argv else ""
    main_module = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", "")
    if program == "celery" or main_module.startswith("celery"):
        return next((c for c in ("worker", "beat", "flower") if c in argv), "celery")
    if program in ("uvicorn", "gunicorn", "daphne") or "runserver" in argv:
        return "web"
    if "pytest" in sys.modules:
        return "test"
    return "manage"


ROLE = _detect_role()


def current_context() -> dict[str, Any]:
    """The job context of the code running now (empty outside a job)."""
    found = _context.get()
    if found is not None:
        return found
    if _task_context and threading.current_thread() is not threading.main_thread():
        return _task_context
    return {}


def bind(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Add fields to the current context; returns a token for :func:`reset`."""
    merged = {**current_context(), **{k: v for k, v in fields.items() if v is not None}}
    return _context.set(merged)


def reset(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


def update(**fields: Any) -> None:
    """Change fields of the context already bound (stage/attempt as a job moves on)."""
    found = _context.get()
    if found is not None:
        found.update({k: v for k, v in fields.items() if v is not None})
    if _task_context:
        _task_context.update({k: v for k, v in fields.items() if v is not None})


def set_task_context(fields: dict[str, Any] | None) -> None:
    """Process-wide context of the running task (prefork: one task per process)."""
    _task_context.clear()
    if fields and threading.current_thread() is threading.main_thread():
        _task_context.update(fields)


@contextmanager
def job_context(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


# --- Redaction -----------------------------------------------------------------

# Each pattern with the text that any match of it contains (lower case): a
# line without it is not searched (most lines hold none, and every line is
# redacted twice).
_PATTERNS = [
    (
        re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}"),
        r"\1 [redacted]",
        ("bearer", "basic"),
    ),
    (re.compile(r"\bmip_[A-Za-z0-9_-]{6,}"), "mip_[redacted]", ("mip_",)),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{6,}"), "whsec_[redacted]", ("whsec_",)),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{12,}"), "sk-[redacted]", ("sk-",)),
    # user:password@ in URLs (database, Redis)
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"),
        r"\1[redacted]@",
        ("://",),
    ),
]
MIN_SECRET_LENGTH = 6
SECRET_SETTINGS = ("SECRET_KEY", "ASSEMBLYAI_API_KEY", "OPENAI_API_KEY", "METRICS_BEARER_TOKEN")
_secret_values: tuple[str, ...] | None = None


def _settings_secrets() -> tuple[str, ...]:
    """Values of secret settings, longest first; read once Django is configured."""
    global _secret_values
    if _secret_values is None:
        from django.conf import settings

        if not settings.configured:
            return ()
        values = [getattr(settings, name, "") for name in SECRET_SETTINGS]
        for url in (getattr(settings, "REDIS_URL", ""), getattr(settings, "CELERY_BROKER_URL", "")):
            values.append(urlsplit(url).password or "")
        values.append(settings.DATABASES.get("default", {}).get("PASSWORD") or "")
        _secret_values = tuple(
            sorted(
                {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH},
                key=len,
                reverse=True,
            )
        )
    return _secret_values


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """`text` with every known secret value and secret-shaped token masked."""
    for value in (*extra, *_settings_secrets()):
        if value and len(value) >= MIN_SECRET_LENGTH and value in text:
            text = text.replace(value, "[redacted]")
    lowered = text.lower()
    for pattern, replacement, needles in _PATTERNS:
        if any(needle in lowered for needle in needles):
            text = pattern.sub(replacement, text)
            lowered = text.lower()
    return text


# --- Filter and formatters -------------------------------------------------------

_JOB_PATH = re.compile(r"/jobs/([0-9a-fA-F-]{36})(?:/|$|\?)")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class ContextFilter(logging.Filter):
    """Adds the role and the job context to every record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = ROLE
        context = current_context()
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None and context.get(name) is not None:
                setattr(record, name, context[name])
        record.secrets = context.get("secrets", ())
        if getattr(record, "job_id", None) is None:
            self._job_from_message_data(record)
        return True

    @staticmethod
    def _job_from_message_data(record: logging.LogRecord) -> None:
        """Lines written about a job outside its context name it in their data."""
        if record.name == "uvicorn.access":
            # Written after Django answered: take the job from the logged path.
            args = record.args if isinstance(record.args, tuple) else ()
            match = _JOB_PATH.search(str(args[2])) if len(args) > 2 else None
            if match:
                record.job_id = match[1]
            return
        data = getattr(record, "data", None)
        if record.name.startswith("celery") and isinstance(data, dict) and "id" in data:
            # "Task ... received", written by the worker's main process.
            record.task_id = record.task_id if getattr(record, "task_id", None) else data["id"]
            record.task = getattr(record, "task", None) or data.get("name")
            if str(data.get("name", "")).startswith("jobs."):
                match = _UUID.search(str(data.get("args", "")))
                if match:
                    record.job_id = match[0]


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "role",
    "secrets",
    "color_message",
    *CONTEXT_FIELDS,
}


def _message(record: logging.LogRecord, formatter: logging.Formatter) -> tuple[str, str]:
    secrets = tuple(getattr(record, "secrets", ()) or ())
    message = redact(record.getMessage(), secrets)
    error = ""
    if record.exc_info:
        error = formatter.formatException(record.exc_info)
    elif record.exc_text:
        error = record.exc_text
    if record.stack_info:
        error = f"{error}\n{formatter.formatStack(record.stack_info)}".strip()
    return message, redact(error, secrets) if error else ""


_JSON_TYPES = (str, int, float, bool, type(None), dict, list, tuple)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, role, job context,
    the exception if any, and any `extra=` fields given to the logging call."""

    def format(self, record: logging.LogRecord) -> str:
        message, error = _message(record, self)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "role": getattr(record, "role", ROLE),
            "pid": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_") and name not in line:
                line[name] = value if isinstance(value, _JSON_TYPES) else str(value)
        if error:
            line["exception"] = error
        # Extra fields (Celery's task arguments, say) are masked too.
        secrets = tuple(getattr(record, "secrets", ()) or ())
        return redact(json.dumps(line, ensure_ascii=False, default=str), secrets)


class TextFormatter(logging.Formatter):
    """The human-readable line, with the job context appended when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        message, error = _message(record, self)
        role = getattr(record, "role", ROLE)
        line = f"{self.formatTime(record)} {record.levelname} [{role}] {record.name}: {message}"
        context = " ".join(
            f"{name}={getattr(record, name)}"
            for name in ("job_id", "task_id", "stage", "attempt")
            if getattr(record, name, None) is not None
        )
        if context:
            line = f"{line} [{context}]"
        return f"{line}\n{error}" if error else line


def logging_config(fmt: str, level: str, quiet: tuple[str, ...] = ()) -> dict[str, Any]:
    """The LOGGING dict for settings.py: one console handler for everything,
    uvicorn's and Celery's loggers included; `quiet` loggers log warnings only."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": fmt,
        "filters": ["context"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "meeting_intel.ops.logs.ContextFilter"}},
        "formatters": {
            "json": {"()": "meeting_intel.ops.logs.JsonFormatter"},
            "text": {"()": "meeting_intel.ops.logs.TextFormatter"},
        },
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # uvicorn configures these before Django loads: take them over.
            "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
            **{name: {"level": "WARNING"} for name in quiet},
        },
    }
