"""Start-up checks in a fresh process, with environment overrides."""

from __future__ import annotations

import os
import subprocess
import sys


def manage_check(**overrides: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check` with the test environment plus `overrides`."""
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environment.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
