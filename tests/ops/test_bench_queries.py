"""The one benchmark figure asserted in CI: saving a transcript costs a fixed
number of queries, whatever the number of segments (bench scenario 4).

Timings are left to `make bench`: these machines are too noisy to assert them.
"""

from __future__ import annotations

import pytest

from bench.savecost import save_queries, segment_insert_batches

pytestmark = pytest.mark.django_db


def test_it_saves_a_three_hour_meeting_in_the_same_number_of_queries_at_any_granularity() -> None:
    coarse, fine = save_queries(1_800), save_queries(18_000)

    # SQLite splits a bulk INSERT into batches of 999 parameters; PostgreSQL
    # sends one statement. Beyond those batches nothing may grow with segments.
    assert fine - segment_insert_batches(18_000) == coarse - segment_insert_batches(1_800)
