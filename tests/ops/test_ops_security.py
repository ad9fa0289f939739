"""Secure by default: production settings pass Django's deployment checks, HTTPS
is enforced except for probes, and uploaded media is never served publicly."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import Client, override_settings

from jobs.models import Job


def _production_env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # Test-only defaults (pytest.ini) and anything that loosens security stay out.
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "DJANGO_", "PYTEST_")) and k != "DEBUG"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="meeting_intel.settings", SECRET_KEY=secrets.token_urlsafe(50)
    )
    env.update(overrides)
    return env


def test_check_deploy_reports_nothing_under_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=_production_env(DEBUG="false"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_development_settings_stay_usable_over_plain_http() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)",
        ],
        cwd=settings.BASE_DIR,
        env=_production_env(DEBUG="true"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["False", "False", "0"], result.stderr


@override_settings(SECURE_SSL_REDIRECT=True)
@pytest.mark.django_db
def test_plain_http_is_redirected_except_probes_and_metrics() -> None:
    client = Client()
    response = client.get("/api/v1/jobs/")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)
    assert client.get("/healthz", headers={"X-Forwarded-Proto": "https"}).status_code == 200
    secure = client.get("/api/v1/jobs/", headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 401  # past the redirect: the API asks for a key
    hsts = secure["Strict-Transport-Security"]
    assert hsts == f"max-age={settings.SECURE_HSTS_SECONDS}; includeSubDomains; preload"
    assert settings.SECURE_HSTS_SECONDS >= 365 * 24 * 3600


@pytest.mark.django_db
def test_uploaded_media_is_never_served_publicly() -> None:
    job = Job()
    job.audio.save("private-recording.wav", ContentFile(b"RIFF....WAVE"), save=True)
    client = Client()
    for path in (
        f"/media/{job.audio.name}",
        f"/{job.audio.name}",
        f"{settings.MEDIA_URL or '/'}{job.audio.name}",
        f"/static/{job.audio.name}",
    ):
        assert client.get(path).status_code == 404, path
    assert not str(settings.MEDIA_ROOT).startswith(str(settings.STATIC_ROOT))
    assert all(not str(settings.MEDIA_ROOT).startswith(str(d)) for d in settings.STATICFILES_DIRS)
