"""What a job used and cost: SPEC's `usage`, priced from settings.PRICE_TABLE.

`audio_seconds` is the audio sent to a transcriber over the job's life (a
reprocess from transcription pays again, so it counts again); the tokens are
the ones the analysis calls reported. A running job's usage is priced live;
when the job ends, `update_job` freezes it on the row, so a later change of
the price table or the provider settings does not rewrite a past bill.

The analysis is priced at the configured analysis provider and model, the
only ones that produce tokens; offline providers cost 0 by the table. The
search index's embedding tokens (the index step adds them to the job) are
priced likewise at the configured embedder: OpenAI's embedding model with
the openai analysis provider, else the offline model, which costs 0. A bill
frozen before embeddings were priced shows them as 0.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TypedDict

from django.conf import settings

from jobs.models import Job
from meeting_intel.lib import pricing

logger = logging.getLogger(__name__)


class Usage(TypedDict):
    audio_seconds: float
    prompt_tokens: int
    completion_tokens: int
    embedding_tokens: int
    transcription_usd: float
    analysis_usd: float
    embedding_usd: float
    total_usd: float


# What a bill frozen before embeddings were priced lacks.
_UNPRICED_EMBEDDING = {"embedding_tokens": 0, "embedding_usd": 0.0}


def _priced(kind: str, compute: object) -> Decimal:
    try:
        return compute()  # type: ignore[operator]
    except pricing.UnknownPrice as exc:
        # Settings check the configured models at start-up; this is a job
        # transcribed by a provider since removed from the table.
        logger.warning("unpriced %s: %s", kind, exc)
        return Decimal(0)


def live_usage(job: Job) -> Usage:
    """The job's usage priced now from its counters."""
    table = settings.PRICE_TABLE
    provider = job.transcription_provider or settings.TRANSCRIPTION_PROVIDER
    seconds = round(float(job.transcribed_seconds or 0), 3)
    transcription = _priced(
        "transcription",
        lambda: pricing.transcription_usd(
            table,
            provider,
            pricing.transcription_model(provider, settings.OPENAI_TRANSCRIPTION_MODEL),
            seconds,
        ),
    )
    analysis = _priced(
        "analysis",
        lambda: pricing.analysis_usd(
            table,
            settings.ANALYSIS_PROVIDER,
            pricing.analysis_model(settings.ANALYSIS_PROVIDER, settings.OPENAI_MODEL),
            job.prompt_tokens,
            job.completion_tokens,
        ),
    )
    embedding = _priced(
        "embedding",
        lambda: pricing.embedding_usd(
            table,
            *pricing.embedding_model(settings.ANALYSIS_PROVIDER, settings.OPENAI_EMBEDDING_MODEL),
            job.embedding_tokens,
        ),
    )
    return {
        "audio_seconds": seconds,
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": job.completion_tokens,
        "embedding_tokens": job.embedding_tokens,
        "transcription_usd": float(transcription),
        "analysis_usd": float(analysis),
        "embedding_usd": float(embedding),
        "total_usd": float(transcription + analysis + embedding),
    }


def job_usage(job: Job) -> Usage:
    """What the API, webhooks and admin show: the frozen figures of an ended job, else live ones."""
    if job.is_terminal and job.usage:
        return {**_UNPRICED_EMBEDDING, **job.usage}  # type: ignore[typeddict-item]
    return live_usage(job)
