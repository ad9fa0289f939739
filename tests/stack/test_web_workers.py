"""The Procfile's web runs WEB_CONCURRENCY uvicorn workers, by default one per core."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from tests.support.platform import base_env, database_url, free_port, start_web

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def workers_started(extra: dict[str, str]) -> int:
    env = base_env(database_url(connection.settings_dict), os.environ.get("REDIS_URL", ""), **extra)
    env.pop("WEB_CONCURRENCY", None)
    env.update(extra)
    web = start_web(env, free_port())
    try:
        expected = int(extra.get("WEB_CONCURRENCY") or len(os.sched_getaffinity(0)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            started = web.output().count("Started server process [")
            if started >= expected:
                time.sleep(1)  # and no more than that
                return web.output().count("Started server process [")
            time.sleep(0.2)
        return web.output().count("Started server process [")
    finally:
        web.stop()


def test_web_concurrency_sets_the_number_of_worker_processes():
    assert workers_started({"WEB_CONCURRENCY": "3"}) == 3


def test_without_it_there_is_one_worker_per_core():
    assert workers_started({}) == (len(os.sched_getaffinity(0)))
