"""Helpers for the page, websocket and browser tests: a staff login on a running
platform, and headless Chromium from the system's packages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model

from tests.support.platform import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def staff_session(
    base_url: str, username: str = "staff", password: str = "staff-pw"
) -> requests.Session:
    """A requests session logged in through the admin login form (CSRF and all)."""
    get_user_model().objects.create_user(username, password=password, is_staff=True)
    session = requests.Session()
    session.get(f"{base_url}/admin/login/", timeout=10)
    response = session.post(
        f"{base_url}/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base_url}/admin/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302 and "sessionid" in session.cookies, response.text[:500]
    return session


HOW_TO_GET_CHROMIUM = (
    "install Debian's chromium package (as root: apt-get install chromium; "
    "make test does it when it runs as root with apt reachable)"
)


def require_chromium() -> None:
    """Call at the top of a browser test module: skip it whole, in one line, when
    Chromium is missing, except under CI=true, where a missing browser fails."""
    if os.access(CHROMIUM, os.X_OK):
        return
    reason = f"browser tests need {CHROMIUM}, which is missing: {HOW_TO_GET_CHROMIUM}"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def launch_chromium(playwright: Any) -> Any:
    """Headless Chromium from Debian's package (see require_chromium).

    Playwright's own browser downloads are never used: there is no internet.
    """
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def screenshot_path(test_name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{test_name}.png"
