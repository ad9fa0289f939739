"""Fake AssemblyAI and OpenAI HTTP servers that the official SDKs can be pointed at.

See :mod:`tests.fakes.assemblyai` and :mod:`tests.fakes.openai` for the protocols,
and :mod:`tests.fakes.base` for faults and measurements shared by both.
"""

from __future__ import annotations

from tests.fakes.assemblyai import FakeAssemblyAI
from tests.fakes.base import Fault, LoggedRequest
from tests.fakes.openai import FakeOpenAI

__all__ = ["FakeAssemblyAI", "FakeOpenAI", "Fault", "LoggedRequest"]
