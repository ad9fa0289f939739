"""Settings for the Meeting Intelligence Platform.

Everything an operator sets comes from the environment through the typed
readers in ``meeting_intel.env``; a malformed value stops start-up with a
message naming the variable. The README's settings table lists them all.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import (
    env_bool,
    env_choice,
    env_float,
    env_float_list,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_results",
    "django_celery_beat",
    "jobs",
    "meetings",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    _db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, Celery, Channels ---------------------------------------------
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))

# Tasks are short (seconds to a few minutes, never a provider wait), so an
# unacknowledged message can be handed out again after 15 minutes without
# ever running twice concurrently; countdowns stay well inside that window.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=10)
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
CELERY_TASK_TIME_LIMIT = TASK_SOFT_TIME_LIMIT + 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_TRACK_STARTED = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Short and long work on separate queues, so each can be scaled on its own.
WORKER_QUEUES = ("celery", "transcription", "analysis", "webhooks", "maintenance")
CELERY_TASK_ROUTES = {
    "jobs.transcribe": {"queue": "transcription"},
    "jobs.poll_transcript": {"queue": "transcription"},
    "jobs.analyze": {"queue": "analysis"},
    "jobs.finalize": {"queue": "analysis"},
    "webhooks.*": {"queue": "webhooks"},
    "jobs.sweep": {"queue": "maintenance"},
}
CELERY_TASK_ALWAYS_EAGER = False

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}

# --- Pipeline ---------------------------------------------------------------
JOB_MAX_RETRIES = env_int("JOB_MAX_RETRIES", 3, minimum=0)
JOB_RETRY_BASE_SECONDS = env_float("JOB_RETRY_BASE_SECONDS", 60, minimum=0)
JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 600, minimum=5)
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
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 1024**3, minimum=1)

ASSEMBLYAI_API_KEY = env_str("ASSEMBLYAI_API_KEY")
ASSEMBLYAI_BASE_URL = env_url("ASSEMBLYAI_BASE_URL", "https://api.assemblyai.com")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env_float("OPENAI_TIMEOUT_SECONDS", 60, minimum=1)
PROVIDER_TIMEOUT_SECONDS = env_float("PROVIDER_TIMEOUT_SECONDS", 60, minimum=1)

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
if "openai" in (TRANSCRIPTION_PROVIDER, ANALYSIS_PROVIDER) and not OPENAI_API_KEY:
    raise ImproperlyConfigured("the openai provider needs OPENAI_API_KEY")

# --- Webhooks ---------------------------------------------------------------
WEBHOOK_ALLOW_PRIVATE_HOSTS = env_bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", False)
WEBHOOK_RETRY_SCHEDULE = env_float_list(
    "WEBHOOK_RETRY_SCHEDULE", [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
)
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 15, minimum=1)

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jobs.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "jobs.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Meeting Intelligence Platform API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets are served by the app itself: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Static and media -------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = BASE_DIR / env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
FILE_UPLOAD_TEMP_DIR = None
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "/admin/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
