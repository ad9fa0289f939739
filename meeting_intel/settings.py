"""Settings for the Meeting Intelligence Platform.

Everything an operator sets comes from the environment through the typed
readers in ``meeting_intel.env``; a malformed value stops start-up with a
message naming the variable. The README's settings table lists them all.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from meeting_intel.env import (
    env_bool,
    env_choice,
    env_float,
    env_float_list,
    env_int,
    env_json,
    env_list,
    env_str,
    env_url,
)
from meeting_intel.lib import pricing
from meeting_intel.ops.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

# Local development settings: `make install` writes .env.local (DEBUG=true and
# a generated SECRET_KEY; git- and docker-ignored). It is read before any
# setting and never over a variable the environment already has.
# LOCAL_ENV_FILE names another file; empty reads none (the tests and the
# Docker image set it so, so they see only their own environment).
LOCAL_ENV_FILE = os.environ.get("LOCAL_ENV_FILE", str(BASE_DIR / ".env.local"))
if LOCAL_ENV_FILE:
    load_dotenv(LOCAL_ENV_FILE, override=False)

VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Security ---------------------------------------------------------------
# Production (DEBUG false) is HTTPS-only by default: `manage.py check --deploy`
# reports nothing. TLS ends at a reverse proxy that sets X-Forwarded-Proto;
# web must only be reachable through it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and Prometheus talk plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # ServeStatic's configuration checks (its middleware serves /static/ on the event loop).
    "servestatic",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_results",
    "django_celery_beat",
    "jobs",
    "meetings",
    "webhooks",
    # Structured logging context and metrics for every process (meeting_intel/ops/wiring.py).
    "meeting_intel.apps.OpsConfig",
]

# In the ASGI process every middleware runs on the event loop: Django's own are
# swapped for inline subclasses (meeting_intel/http/async_middleware.py), so a
# request hops to a thread for its sync view only, not per middleware.
MIDDLEWARE = [
    # First, so every line a request logs carries its job (meeting_intel/ops/wiring.py).
    "meeting_intel.ops.wiring.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files answered on the loop, before any session work.
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Inside CommonMiddleware: its APPEND_SLASH redirect still sees the 404.
    "meeting_intel.http.errors.ApiErrorPagesMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The chain for /api/v1/ paths under ASGI (meeting_intel/http/async_middleware.py):
# the part of MIDDLEWARE the API needs, in its order. The API authenticates by
# key, so it needs no session, CSRF, auth or messages, and it has no static files.
API_MIDDLEWARE = [
    "meeting_intel.ops.wiring.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "meeting_intel.http.errors.ApiErrorPagesMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "meeting_intel.urls"
ASGI_APPLICATION = "meeting_intel.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
# The embedded default (no DATABASE_URL): process_meeting may migrate it itself.
DATABASE_EMBEDDED = not env_str("DATABASE_URL")
if DATABASE_EMBEDDED:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
try:
    _db = dj_database_url.parse(env_str("DATABASE_URL", _default_db), conn_max_age=0)
except Exception as exc:  # dj-database-url raises several types for bad URLs
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers run beside the
    # writer, IMMEDIATE transactions avoid upgrade deadlocks, and the test
    # database is a file so worker subprocesses in tests can open it.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # One file per test run, so concurrent runs on one checkout do not collide.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    # Under ASGI each request runs its sync code in a thread of its own, and
    # Django's connections are per thread: persistent connections would be
    # opened per request and never reused. A pool per process hands each
    # request an open connection instead (returned when the request ends).
    # Celery's prefork children close the inherited pool and open their own.
    # Sizing (README "Sizing"): every process may hold DATABASE_POOL_MAX_SIZE
    # connections, so web workers × that + worker children × that must stay
    # under PostgreSQL's max_connections.
    _pool_max = env_int("DATABASE_POOL_MAX_SIZE", 8, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True  # with the pool: checked on checkout
    if _pool_max:
        _db["OPTIONS"] = {
            "pool": {
                "min_size": min(env_int("DATABASE_POOL_MIN_SIZE", 2, minimum=0), _pool_max),
                "max_size": _pool_max,
                # A request waits this long for a free connection, then fails
                # (a 500 the logs explain) rather than queueing for ever.
                "timeout": env_float("DATABASE_POOL_TIMEOUT", 10, minimum=0.1),
                # Idle connections above min_size are closed after 5 minutes.
                "max_idle": 300,
            }
        }
DATABASES = {"default": _db}
# The hot API read's own async pool (meeting_intel/lib/async_db.py), per web
# process beside the one above, so that read never leaves the event loop.
# PostgreSQL only; 0 turns it off (the read then runs in Django's thread).
DATABASE_READ_POOL_MAX_SIZE = (
    0 if DATABASE_EMBEDDED else env_int("DATABASE_READ_POOL_MAX_SIZE", 4, minimum=0)
)
DATABASE_READ_POOL_TIMEOUT = env_float("DATABASE_POOL_TIMEOUT", 10, minimum=0.1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, Celery, Channels ---------------------------------------------
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))

# Tasks are short (seconds to a few minutes, never a provider wait), so an
# unacknowledged message can be handed out again after 15 minutes without
# ever running twice concurrently; countdowns stay well inside that window.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=5)
TASK_SOFT_TIME_LIMIT = env_int("TASK_SOFT_TIME_LIMIT", 300, minimum=1)
MAX_COUNTDOWN_SECONDS = max(1, min(300, CELERY_VISIBILITY_TIMEOUT // 3))

CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 2, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = int(TASK_SOFT_TIME_LIMIT * 1.1) + 2
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    # A message still running when its visibility timeout ends is handed to a
    # second worker: the timeout must outlast the longest possible task.
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}) must exceed the task time "
        f"limit ({CELERY_TASK_TIME_LIMIT}, from TASK_SOFT_TIME_LIMIT)"
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # How often a worker looks for messages a dead worker left unacknowledged.
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers reuse database connections across tasks (meeting_intel/celery.py):
# Celery's Django fixup recycles them only every CELERY_DB_REUSE_MAX tasks.
CELERY_DB_REUSE_MAX = 500
WORKER_DB_CONN_MAX_AGE = env_int("WORKER_DB_CONN_MAX_AGE", 300, minimum=0)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_TRACK_STARTED = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Beat's database scheduler copies these into django-celery-beat's tables at
# start-up, where staff can see and pause them in admin.
SWEEP_INTERVAL_SECONDS = env_float("SWEEP_INTERVAL_SECONDS", 15, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "Sweep stuck jobs": {"task": "jobs.sweep", "schedule": SWEEP_INTERVAL_SECONDS},
    "Send due webhooks": {"task": "webhooks.sweep", "schedule": SWEEP_INTERVAL_SECONDS},
    # jobs/retention.py: AUDIO_RETENTION_DAYS.
    "Delete expired audio": {"task": "jobs.purge_audio", "schedule": crontab(minute=17, hour=3)},
}
# SIGTERM is a warm shutdown: running tasks finish, and messages the worker
# reserved (prefetched, on countdown) go back to the queue. A cold shutdown
# (SIGQUIT, a second Ctrl-C) still gives running tasks this long, then cancels
# them; acks are late, so they are redelivered, never lost.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env_float("WORKER_SOFT_SHUTDOWN_TIMEOUT", 60, minimum=0)
CELERY_WORKER_ENABLE_SOFT_SHUTDOWN_ON_IDLE = True
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Short and long work on separate queues, so each can be scaled on its own.
WORKER_QUEUES = ("celery", "transcription", "analysis", "webhooks", "maintenance")
# Two kinds of worker (Procfile, compose): `worker` runs the short and
# CPU-bound tasks on prefork; `worker-analysis` runs the analysis queue on
# threads, because an analyze task mostly waits for model answers and must
# not hold a process while it does (ANALYSIS_MAX_IN_FLIGHT bounds its calls).
PREFORK_QUEUES = ("celery", "transcription", "webhooks", "maintenance")
THREADS_QUEUES = ("analysis",)
CELERY_TASK_ROUTES = {
    "jobs.transcribe": {"queue": "transcription"},
    "jobs.poll_transcript": {"queue": "transcription"},
    "jobs.index": {"queue": "analysis"},
    "jobs.analyze": {"queue": "analysis"},
    "jobs.finalize": {"queue": "analysis"},
    "webhooks.*": {"queue": "webhooks"},
    "jobs.sweep": {"queue": "maintenance"},
    "jobs.purge_audio": {"queue": "maintenance"},
}
CELERY_TASK_ALWAYS_EAGER = False

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 times reads out after 5 s by default, which breaks the
        # layer's blocking receive on idle websockets; and its async pool
        # raises instead of waiting at 100 connections (mass disconnects).
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": None,
                    # A Redis that does not answer refuses sockets in 2 s, not minutes.
                    "socket_connect_timeout": 2,
                    "max_connections": 1000,
                }
            ]
        },
    }
}

# --- Pipeline ---------------------------------------------------------------
JOB_MAX_RETRIES = env_int("JOB_MAX_RETRIES", 3, minimum=0)
JOB_RETRY_BASE_SECONDS = env_float("JOB_RETRY_BASE_SECONDS", 60, minimum=0)
# How late past its due time a job's next step may be before the sweeper
# sends it again (its message was lost, or held by a worker that died).
JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 30, minimum=5)
# A running step's lease, renewed by its process every quarter of this: a
# killed worker's jobs are free again within this long.
JOB_LEASE_SECONDS = env_float("JOB_LEASE_SECONDS", 60, minimum=2)
JOB_MAX_REDELIVERIES = env_int("JOB_MAX_REDELIVERIES", 3, minimum=1)
TRANSCRIPT_POLL_SECONDS = env_float("TRANSCRIPT_POLL_SECONDS", 5, minimum=0.1)
TRANSCRIPT_POLL_MAX_SECONDS = env_float("TRANSCRIPT_POLL_MAX_SECONDS", 60, minimum=0.1)
# AssemblyAI can only call back a platform it can reach: on by default unless
# PUBLIC_BASE_URL is a loopback address. Polling covers callbacks that never come.
TRANSCRIPT_CALLBACKS = env_bool(
    "TRANSCRIPT_CALLBACKS",
    not any(h in PUBLIC_BASE_URL for h in ("://localhost", "://127.", "://[::1]")),
)
VIEWER_TOKEN_MAX_AGE = env_int("VIEWER_TOKEN_MAX_AGE", 30 * 24 * 3600, minimum=60)
# Every open websocket re-checks its grant (staff session, viewer-token
# version) this often, besides closing at once on logout, demotion and revocation.
STAFF_SOCKET_RECHECK_SECONDS = env_float("STAFF_SOCKET_RECHECK_SECONDS", 30, minimum=1)
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 1024**3, minimum=1)
# Every body but an upload's (meeting_intel/http/body_limits.py): JSON, forms, multipart text fields.
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_BYTES", 1024 * 1024, minimum=1024)
# The only routes whose multipart bodies may reach UPLOAD_MAX_BYTES.
UPLOAD_PATHS = ("/api/v1/jobs/", "/admin/jobs/job/add/")

ASSEMBLYAI_API_KEY = env_str("ASSEMBLYAI_API_KEY")
ASSEMBLYAI_BASE_URL = env_url("ASSEMBLYAI_BASE_URL", "https://api.assemblyai.com")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env_float("OPENAI_TIMEOUT_SECONDS", 60, minimum=1)
OPENAI_TRANSCRIPTION_MODEL = env_str("OPENAI_TRANSCRIPTION_MODEL", "whisper-1")
# An audio upload takes longer than a chat answer.
OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS = env_float(
    "OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS", 600, minimum=1
)
PROVIDER_TIMEOUT_SECONDS = env_float("PROVIDER_TIMEOUT_SECONDS", 60, minimum=1)
# The transcribe task of the synchronous provider (openai) does the whole
# transcription: its own time limits outlast the OpenAI request's timeout plus
# the conversion to MP3, and stay under the visibility timeout (checked below
# when the provider is openai).
SYNC_TRANSCRIPTION_SOFT_TIME_LIMIT = env_int(
    "SYNC_TRANSCRIPTION_SOFT_TIME_LIMIT",
    int(max(TASK_SOFT_TIME_LIMIT, OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS + 120)),
    minimum=1,
)
SYNC_TRANSCRIPTION_TIME_LIMIT = int(SYNC_TRANSCRIPTION_SOFT_TIME_LIMIT * 1.1) + 2
# The local transcriber works in windows of this much audio, one task each
# (jobs/providers/local/transcription.py), under the ordinary task limits: a
# window must take well under TASK_SOFT_TIME_LIMIT on the workers' CPUs.
LOCAL_TRANSCRIPTION_WINDOW_SECONDS = env_int("LOCAL_TRANSCRIPTION_WINDOW_SECONDS", 300, minimum=60)

# Global provider limits shared by all workers (jobs/providers/limits.py). The
# defaults sit at typical paid-tier quotas, well above a few hundred jobs.
RATE_LIMIT_WINDOW_SECONDS = env_float("RATE_LIMIT_WINDOW_SECONDS", 60, minimum=1)
RATE_LIMIT_MAX_BLOCK_SECONDS = env_float("RATE_LIMIT_MAX_BLOCK_SECONDS", 2, minimum=0)
OPENAI_REQUESTS_PER_MINUTE = env_int("OPENAI_REQUESTS_PER_MINUTE", 3000, minimum=1)
OPENAI_TOKENS_PER_MINUTE = env_int("OPENAI_TOKENS_PER_MINUTE", 2_000_000, minimum=1)
OPENAI_TRANSCRIPTION_REQUESTS_PER_MINUTE = env_int(
    "OPENAI_TRANSCRIPTION_REQUESTS_PER_MINUTE", 500, minimum=1
)
# Search embeddings (README "Search"); OpenAI limits each model on its own.
OPENAI_EMBEDDING_MODEL = env_str("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
OPENAI_EMBEDDING_REQUESTS_PER_MINUTE = env_int(
    "OPENAI_EMBEDDING_REQUESTS_PER_MINUTE", 3000, minimum=1
)
OPENAI_EMBEDDING_TOKENS_PER_MINUTE = env_int(
    "OPENAI_EMBEDDING_TOKENS_PER_MINUTE", 1_000_000, minimum=1
)
ASSEMBLYAI_MAX_CONCURRENT = env_int("ASSEMBLYAI_MAX_CONCURRENT", 500, minimum=1)
# Analysis splits long transcripts into chunks of about this many tokens: a
# one-hour meeting (about 14,000) is one call per step, well inside the
# model's context (gpt-4o-mini: 128,000 tokens) with room for its answer.
ANALYSIS_CHUNK_TOKENS = env_int("ANALYSIS_CHUNK_TOKENS", 24_000, minimum=200)
ANALYSIS_CONCURRENCY = env_int("ANALYSIS_CONCURRENCY", 8, minimum=1)
# Model calls in flight at once in one worker process, across all its jobs.
ANALYSIS_MAX_IN_FLIGHT = env_int("ANALYSIS_MAX_IN_FLIGHT", 64, minimum=1)
# Stop taking new analysis calls well before the soft time limit; continue in a new task.
ANALYSIS_TASK_BUDGET_SECONDS = min(
    env_float("ANALYSIS_TASK_BUDGET_SECONDS", 120, minimum=1), TASK_SOFT_TIME_LIMIT / 2
)

TRANSCRIPTION_PROVIDER = env_choice(
    "TRANSCRIPTION_PROVIDER",
    ("assemblyai", "openai", "local"),
    "assemblyai" if ASSEMBLYAI_API_KEY else "local",
)
ANALYSIS_PROVIDER = env_choice(
    "ANALYSIS_PROVIDER", ("openai", "local"), "openai" if OPENAI_API_KEY else "local"
)
if TRANSCRIPTION_PROVIDER == "assemblyai" and not ASSEMBLYAI_API_KEY:
    raise ImproperlyConfigured("TRANSCRIPTION_PROVIDER=assemblyai needs ASSEMBLYAI_API_KEY")
if (
    TRANSCRIPTION_PROVIDER == "openai"
    and CELERY_VISIBILITY_TIMEOUT <= SYNC_TRANSCRIPTION_TIME_LIMIT
):
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}) must exceed the time limit of "
        f"a synchronous transcription ({SYNC_TRANSCRIPTION_TIME_LIMIT}, from "
        "SYNC_TRANSCRIPTION_SOFT_TIME_LIMIT and OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS)"
    )
if "openai" in (TRANSCRIPTION_PROVIDER, ANALYSIS_PROVIDER) and not OPENAI_API_KEY:
    raise ImproperlyConfigured("the openai provider needs OPENAI_API_KEY")

# What each job cost (meeting_intel/lib/pricing.py has the defaults and the shape).
PRICE_TABLE = pricing.build(env_json("PRICE_TABLE", {}))
pricing.require(
    PRICE_TABLE,
    transcription=(
        TRANSCRIPTION_PROVIDER,
        pricing.transcription_model(TRANSCRIPTION_PROVIDER, OPENAI_TRANSCRIPTION_MODEL),
    ),
    analysis=(ANALYSIS_PROVIDER, pricing.analysis_model(ANALYSIS_PROVIDER, OPENAI_MODEL)),
    embedding=pricing.embedding_model(ANALYSIS_PROVIDER, OPENAI_EMBEDDING_MODEL),
)

# --- Webhooks ---------------------------------------------------------------
WEBHOOK_ALLOW_PRIVATE_HOSTS = env_bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", False)
WEBHOOK_RETRY_SCHEDULE = env_float_list(
    "WEBHOOK_RETRY_SCHEDULE", [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
)
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 15, minimum=1)
# A receiver's Retry-After is honoured up to this many seconds.
WEBHOOK_RETRY_AFTER_MAX_SECONDS = env_float("WEBHOOK_RETRY_AFTER_MAX_SECONDS", 3600, minimum=0)
# After a client's signing secret is rotated, the old one keeps signing this long.
WEBHOOK_SECRET_OVERLAP_SECONDS = env_int("WEBHOOK_SECRET_OVERLAP_SECONDS", 24 * 3600, minimum=0)
# The seed's `X-Webhook-Secret` header (the secret in clear), for a CMS built for it.
WEBHOOK_LEGACY_SECRET_HEADER = env_bool("WEBHOOK_LEGACY_SECRET_HEADER", False)

# --- REST API ---------------------------------------------------------------
# Requests per client per period ("600/min"); shared across web processes
# through the Redis cache.
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "600/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", API_THROTTLE_RATE):
    raise ImproperlyConfigured(
        f"API_THROTTLE_RATE must look like 600/min (per s, min, hour or day), got {API_THROTTLE_RATE!r}"
    )
# GET /api/v1/jobs/{id}/ remembers an active key's client this long in each
# web process (jobs/api/key_cache.py): a revoked key stops working there within
# this many seconds (at once on every other endpoint). 0: look it up every time.
API_KEY_CACHE_SECONDS = env_float("API_KEY_CACHE_SECONDS", 5.0, minimum=0)
# Total seconds the worker spends downloading a job's `audio_url`.
AUDIO_URL_TIMEOUT_SECONDS = env_float(
    "AUDIO_URL_TIMEOUT_SECONDS", min(240.0, TASK_SOFT_TIME_LIMIT * 0.8), minimum=1
)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "meeting-intel",
    }
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jobs.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["jobs.api.auth.ClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "meeting_intel.http.body_limits.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "meeting_intel.http.body_limits.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "meeting_intel.http.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Meeting Intelligence Platform API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components, so read-only fields stay out
    # of request bodies and uploads are described as binary.
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and docs are public; a bad key must not hide them.
    "SERVE_AUTHENTICATION": [],
    # Swagger UI's assets are served by the app itself: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Say what the code enforces beyond the serializers (meeting_intel/http/schema_contract.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "meeting_intel.http.schema_contract.no_nul_in_text",
    ],
}

# --- Static and media -------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = BASE_DIR / env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
FILE_UPLOAD_TEMP_DIR = None
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The first handler refuses a body over UPLOAD_MAX_BYTES as it streams in;
# the others keep small files in memory and stream large ones to disk.
FILE_UPLOAD_HANDLERS = [
    "meeting_intel.http.body_limits.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SERVESTATIC_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "/admin/login/"

# --- Operations -------------------------------------------------------------
# One line per record on stderr, for web, worker and beat alike: JSON in
# production, text in development; job context and secret masking either way.
LOG_FORMAT = env_choice("LOG_FORMAT", ("json", "text"), "text" if DEBUG else "json")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {LOG_LEVEL!r}"
    )
LOGGING = logging_config(
    LOG_FORMAT,
    LOG_LEVEL,
    # fontTools logs every glyph of every font subset a PDF report embeds.
    quiet=("httpx", "httpcore", "httpx2", "httpcore2", "fontTools"),
)
# Every process of a host writes its counters and histograms here; /metrics
# merges them. Clear it when all the host's processes restart.
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics")))
# /metrics (and a worker's metrics port) need `Authorization: Bearer <token>`.
# Outside DEBUG an empty token stops start-up, unless METRICS_PUBLIC=true says
# on purpose that anyone who can reach the port may read the metrics.
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN")
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", False)
if not DEBUG and not METRICS_BEARER_TOKEN and not METRICS_PUBLIC:
    raise ImproperlyConfigured(
        "METRICS_BEARER_TOKEN must be set when DEBUG is false "
        "(or set METRICS_PUBLIC=true to serve /metrics without one)"
    )
# A worker machine without a web process serves its metrics on this port (0: off),
# on loopback unless WORKER_METRICS_ADDR names another address.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0)
WORKER_METRICS_ADDR = env_str("WORKER_METRICS_ADDR", "127.0.0.1")
READYZ_TIMEOUT_SECONDS = env_float("READYZ_TIMEOUT_SECONDS", 2, minimum=0.1)
# Audio is deleted this many days after its job finished; transcripts stay (0: keep forever).
AUDIO_RETENTION_DAYS = env_int("AUDIO_RETENTION_DAYS", 30, minimum=0)
