"""Each pytest-xdist worker gets a Redis database and a media folder of its own.

Loaded as a plugin (``-p tests.support.xdist_worker`` in pytest.ini), so it runs
before pytest-django imports the settings, which read ``REDIS_URL`` once.
pytest-django already gives every worker its own test database (``_gw0``,
``_gw1``, …); this does the same for what the settings read from the
environment. Worker ``gwK`` uses database ``d + K`` of ``REDIS_URL``'s server
(``d`` the URL's own), skipping 14 and 15, which the benchmarks use. Without
xdist (``-n 0``) nothing changes.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

BENCH_DATABASES = (14, 15)


def worker_redis_url(url: str, index: int) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or index == 0:
        return url
    base = int(parts.path.strip("/") or 0)
    free = [db for db in range(16) if db not in BENCH_DATABASES]
    db = free[(free.index(base) + index) % len(free)] if base in free else base + index
    return urlunsplit(parts._replace(path=f"/{db}"))


def _configure_worker() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    index = int(worker[2:])
    os.environ["REDIS_URL"] = worker_redis_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), index
    )
    os.environ["MEDIA_ROOT"] = f"{os.environ.get('MEDIA_ROOT', 'var/test-media')}-{worker}"


_configure_worker()
