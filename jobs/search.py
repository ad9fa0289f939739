"""Running a search or a question for a caller that has decided the scope.

Shared by the API (``jobs.api.search``), the staff search page and the
results page (``jobs.web.search``): the query's embedding through the
configured provider (provider trouble becomes an API error with
``Retry-After``), each hit's link to the results page at its moment, and
answers whose citations are checked against what was retrieved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np
from django.db.models import QuerySet
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.errors import Deferred, PermanentError, TransientError
from jobs.models import Job
from jobs.providers import get_answerer, get_embedder
from jobs.providers.answering import Answer, Source
from jobs.tokens import results_url
from meeting_intel.http.errors import ApiError
from meetings.models import Meeting
from meetings.search import hybrid
from meetings.search.query import Filters, Hit

ASK_PASSAGES = 8


def embed_query(text: str) -> tuple[str, np.ndarray]:
    """The configured embedder's vector for a query, provider errors as API errors."""
    embedder = get_embedder()
    return embedder.name, call_provider(lambda: embedder.embed([text])).vectors[0]


def call_provider(call: Any) -> Any:
    try:
        return call()
    except Deferred as exc:
        raise _unavailable(429, "rate_limited", exc.reason, exc.seconds) from exc
    except TransientError as exc:
        raise _unavailable(503, "provider_unavailable", exc.message, exc.retry_after or 5) from exc
    except PermanentError as exc:
        raise ApiError(502, exc.code, exc.message) from exc
    except (RedisConnectionError, RedisTimeoutError) as exc:
        # Nothing is sent to a provider whose fleet-wide limits cannot be checked.
        raise _unavailable(
            503, "provider_unavailable", "The provider's limits cannot be checked now", 5
        ) from exc


def _unavailable(status: int, code: str, message: str, seconds: float) -> ApiError:
    error = ApiError(status, code, message)
    error.wait = max(1, math.ceil(seconds))  # the exception handler sends Retry-After
    return error


@dataclass(frozen=True)
class Links:
    """The results-page URL (with its viewer token) of each hit's job, at the hit's moment."""

    jobs: dict[str, Job]

    @classmethod
    def for_hits(cls, hits: list[Hit]) -> Links:
        jobs = Job.objects.in_bulk({h.job_id for h in hits})
        return cls({str(job_id): job for job_id, job in jobs.items()})

    def url(self, hit: Hit) -> str:
        base = results_url(self.jobs[hit.job_id], hit.meeting_id) or ""
        seconds = hit.start_ms // 1000
        return f"{base}&{urlencode({'t': seconds})}#t={seconds}"


def hit_data(hit: Hit, links: Links | None) -> dict[str, Any]:
    data = {
        "meeting_id": hit.meeting_id,
        "job_id": hit.job_id,
        "title": hit.title,
        "start_ms": hit.start_ms,
        "end_ms": hit.end_ms,
        "speaker_name": hit.speaker_name,
        "text": hit.text,
        "highlight": hit.highlight,
        "score": hit.score,
    }
    if links is not None:
        data["url"] = links.url(hit)
    return data


def answer_question(scope: QuerySet[Meeting], question: str) -> tuple[Answer, list[Hit], str]:
    """Retrieve, answer, and keep only citations of retrieved passages."""
    hits = hybrid.retrieve(scope, question, Filters(), embed_query, ASK_PASSAGES)
    sources = {
        f"P{i}": Source(
            id=f"P{i}",
            title=h.title,
            start_ms=h.start_ms,
            speaker_name=h.speaker_name,
            text=h.text,
            keyword_match=h.keyword_match,
            similarity=h.similarity,
        )
        for i, h in enumerate(hits, start=1)
    }
    by_id = dict(zip(sources, hits, strict=True))  # a cited id must be one of these
    answerer = get_answerer()
    answer = call_provider(lambda: answerer.answer(question, list(sources.values())))
    cited = [by_id[c] for c in answer.cited if c in by_id]
    return answer, cited, answerer.name
