"""Start-up hook of every process the bench starts (this folder is first on PYTHONPATH).

Keeps the test suite's network guard (the processes talk to the fake
providers only), then counts SQL statements into BENCH_QUERY_DIR.
"""

import os
import runpy

_root = os.environ["MEETING_INTEL_ROOT"]
runpy.run_path(os.path.join(_root, "tests", "support", "offline", "sitecustomize.py"))

if os.environ.get("BENCH_QUERY_DIR"):
    from bench.querycount import install

    install(os.environ["BENCH_QUERY_DIR"])

# Profiled: the worker processes only (a profiled web starts too slowly for the bench).
if os.environ.get("BENCH_PROFILE") and os.environ.get("BENCH_QUERY_DIR", "").endswith("worker"):
    from bench.profiling import install as profile

    profile(os.environ["BENCH_PROFILE"])
