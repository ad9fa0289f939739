"""Loaded by Python at start-up when this folder is on PYTHONPATH: block the internet."""

import os
import sys

if os.environ.get("MEETING_INTEL_OFFLINE") == "1":
    sys.path.insert(0, os.environ["MEETING_INTEL_ROOT"])
    from tests.support.netguard import install

    install()
