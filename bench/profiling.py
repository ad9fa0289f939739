"""Profiling the bench's workers with cProfile (BENCH_PROFILE=<directory>), to find CPU costs.

``bench/hooks/sitecustomize.py`` calls :func:`install` in the platform's worker
processes. Every thread of each process (and of each prefork child, after its
fork) gets a profiler of its own, and a daemon thread rewrites
``<directory>/<pid>-<n>.prof`` for each every few seconds (prefork children
leave with ``os._exit``, so nothing runs at exit). Read them with
``pstats.Stats(*paths).sort_stats("tottime")``; times are each thread's CPU
time (``time.thread_time``), so waits do not show.
"""

from __future__ import annotations

import cProfile
import marshal
import os
import sys
import threading
import time
from typing import Any

DUMP_SECONDS = 5.0
_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def install(directory: str) -> None:
    _start(directory)
    os.register_at_fork(after_in_child=lambda: _start(directory))


def _profile_this_thread() -> None:
    # CPU time of the thread, not the wall clock: on a loaded machine (or a
    # thread waiting on a socket) wall time says where a thread waited.
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()


def _thread_started(frame: Any, event: str, arg: Any) -> None:
    # threading installs this as the new thread's profile function: swap in a profiler.
    sys.setprofile(None)
    _profile_this_thread()


def _start(directory: str) -> None:
    with _lock:
        _profiles.clear()
    _profile_this_thread()
    threading.setprofile(_thread_started)
    pid = os.getpid()

    def dump() -> None:
        sys.setprofile(None)
        while True:
            time.sleep(DUMP_SECONDS)
            with _lock:
                profiles = list(_profiles)
            for n, profile in enumerate(profiles):
                # Profile.dump_stats would disable the profiler; a snapshot does not.
                profile.snapshot_stats()
                with open(os.path.join(directory, f"{pid}-{n}.prof"), "wb") as out:
                    marshal.dump(profile.stats, out)

    thread = threading.Thread(target=dump, name="bench-profile", daemon=True)
    threading.setprofile(None)  # the dumper itself is not profiled
    thread.start()
    threading.setprofile(_thread_started)
