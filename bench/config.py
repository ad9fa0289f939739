"""How big each scenario is: the default run (about 12 minutes on 2 cores) and BENCH_FULL=1."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Sizes:
    full: bool = False
    # 1. Throughput with a slow provider (jobs submitted at once).
    s1_jobs: int = 200
    s1_baseline_jobs: int = 4  # two rounds of its two slots: its rate is steady from the first job
    s1_transcription_seconds: float = 20.0
    s1_llm_seconds: float = 1.0
    # 2. Latency of one job (submitted in pairs: one per worker slot, so nothing queues).
    s2_jobs: int = 16
    s2_transcription_seconds: float = 5.0
    s2_llm_seconds: float = 1.0
    # 3. Orchestration cost with instant providers, one-hour meetings.
    s3_jobs: int = 30
    s3_utterances: int = 600
    s3_words_per_utterance: int = 15
    # 4. Saving a 3-hour meeting.
    s4_segments: tuple[int, ...] = (1_800, 18_000)
    # 5. One large upload.
    s5_bytes: int = 500_000_000
    # 6. The API under load, against the bare Django floor (alternating rounds).
    s6_clients: int = 100
    s6_seconds: float = 15.0
    s6_rounds: int = 2
    # 7. Websocket fan-out.
    s7_subscribers: int = 200
    s7_changes: int = 10
    # 8. Search across meetings (the size: 1,000 one-hour meetings).
    s8_meetings: int = 1_000
    s8_segments_per_meeting: int = 600
    s8_queries: int = 60
    # 10. Recovery: every worker SIGKILLed mid-wait (shipped recovery settings).
    s10_jobs: int = 40
    s10_transcription_seconds: float = 20.0


DEFAULT = Sizes()
FULL = replace(
    DEFAULT,
    full=True,
    s1_baseline_jobs=200,
    s2_jobs=20,
    s2_transcription_seconds=30.0,
    s2_llm_seconds=2.0,
    s3_jobs=100,
    s6_seconds=30.0,
    s6_rounds=3,
    s7_changes=50,
)


# A smoke-test size (BENCH_QUICK=1): checks every scenario runs, in minutes.
QUICK = replace(DEFAULT, s1_jobs=40, s2_jobs=4, s3_jobs=6, s10_jobs=8)


def sizes_from_env() -> Sizes:
    """FULL when BENCH_FULL=1 (about 90 minutes: the baseline runs all 200 slow jobs),
    QUICK when BENCH_QUICK=1 (figures not comparable), else DEFAULT."""
    if os.environ.get("BENCH_FULL") == "1":
        return FULL
    return QUICK if os.environ.get("BENCH_QUICK") == "1" else DEFAULT


def scenarios_from_env() -> list[int]:
    """The scenarios to run: BENCH_ONLY=1,3 runs the first and third; default all ten."""
    only = os.environ.get("BENCH_ONLY", "").strip()
    return sorted({int(part) for part in only.split(",")}) if only else list(range(1, 11))
