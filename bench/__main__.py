"""`python -m bench` (run by `make bench`): measure the platform against the original design.

Starts the platform's web and worker from the Procfile and the baseline's
worker, against the fake providers, runs the scenarios, prints one table and
writes bench/results.json. BENCH_FULL=1 runs the full-size version;
BENCH_ONLY=1,3 runs only the scenarios listed.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import asdict

from bench.config import scenarios_from_env, sizes_from_env
from bench.harness import Harness
from bench.report import RESULTS, Result, load_average, machine, table, write


def main() -> int:
    sizes, wanted = sizes_from_env(), scenarios_from_env()
    # The services run in their own sessions: a SIGTERM must still reach close().
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    harness = Harness(sizes)
    results: list[Result] = []
    try:
        harness.start()
        # Imported once Django is set up by the harness.
        from bench.pipeline_scenarios import cost, latency, throughput
        from bench.recovery import recovery
        from bench.report_scenario import report_scenario
        from bench.savecost import save_scenario
        from bench.search_scenario import search_scenario
        from bench.web_scenarios import api_load, fanout, upload

        scenarios = {
            1: throughput,
            2: latency,
            3: cost,
            4: save_scenario,
            5: upload,
            6: api_load,
            7: fanout,
            8: search_scenario,
            9: report_scenario,
            10: recovery,
        }
        info = machine(_database())
        for number in wanted:
            print(
                f"bench: scenario {number} ({time.monotonic() - started:.0f}s so far)", flush=True
            )
            results.append(scenarios[number](harness))
        info["load_average_at_end"] = load_average()
    finally:
        harness.close()
    report = write(results, info, asdict(sizes), time.monotonic() - started)
    print(table(report))
    print(f"\nbench: {len(results)} scenarios in {report['runtime_seconds']}s; wrote {RESULTS}")
    return 0


def _database() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        return f"PostgreSQL {connection.pg_version // 10000}"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version}"


if __name__ == "__main__":
    sys.exit(main())
