"""AssemblyAI transcription through the official SDK.

One function per call. The SDK never retries and drops response headers
from its errors, so a response hook keeps `Retry-After`, and every failure is
translated here into a TransientError or a PermanentError.

A transcript is read with the SDK's HTTP client (its key, base URL and
timeout) but parsed here: the SDK validates every word of a finished
transcript with pydantic, seconds of CPU for an hour-long meeting, and the
pipeline reads only a few of its fields (PROVIDERS.md lists them). Its
word arrays are cut out of the JSON before it is parsed (`_parse_transcript`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import assemblyai as aai
import httpx
from assemblyai import api as aai_api
from django.conf import settings

from jobs.errors import PermanentError, TransientError
from jobs.providers.base import AudioSource, before_paid_request
from meetings.transcript import Transcript, Utterance

T = TypeVar("T")


class AssemblyAITranscriber:
    name = "assemblyai"

    def __init__(self) -> None:
        self._client = aai.Client(
            settings=aai.Settings(
                api_key=settings.ASSEMBLYAI_API_KEY,
                base_url=settings.ASSEMBLYAI_BASE_URL,
                http_timeout=settings.PROVIDER_TIMEOUT_SECONDS,
            )
        )
        # Per thread: one transcriber serves every task of its process.
        self._seen = threading.local()
        self._client.http_client.event_hooks["response"].append(self._remember)

    def _remember(self, response: httpx.Response) -> None:
        self._seen.response = response

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except httpx.TimeoutException as exc:
            raise TransientError("provider_timeout", f"AssemblyAI {what} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientError("provider_unreachable", f"AssemblyAI {what}: {exc}") from exc
        except aai.types.TranscriptError as exc:
            raise self._translate(what, exc) from exc

    def _translate(self, what: str, exc: aai.types.TranscriptError) -> Exception:
        code = exc.status_code
        text = f"AssemblyAI {what} failed ({code}): {exc}"
        if code == 429:
            return TransientError("provider_rate_limited", text, self._retry_after())
        if code is None or code >= 500 or code == 408:
            return TransientError("provider_unavailable", text, self._retry_after())
        if code in (401, 403):
            return PermanentError("provider_auth", "AssemblyAI rejected the API key")
        return PermanentError("audio_rejected", text)

    def _retry_after(self) -> float | None:
        last: httpx.Response | None = getattr(self._seen, "response", None)
        if last is None:
            return None
        value = last.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def submit(self, audio: AudioSource) -> str:
        """Upload the audio and create a transcript with speaker labels; return its id.

        Without a language, AssemblyAI's language detection is asked for (the
        detected code comes back on the transcript). `audio.vocabulary` is
        sent as `keyterms_prompt`, the SDK's current hint (its older
        `word_boost` is not supported by the newer speech models).

        Does not wait. When `audio.callback_url` is set, AssemblyAI POSTs
        {"transcript_id", "status"} there, with `audio.callback_header`.
        """
        http = self._client.http_client
        before_paid_request()
        with audio.path.open("rb") as fh:
            upload_url = self._call("upload", lambda: aai_api.upload_file(http, fh))
        request = aai.types.TranscriptRequest(
            audio_url=upload_url,
            speaker_labels=True,
            speakers_expected=audio.speakers_expected,
            language_code=audio.language or None,
            language_detection=None if audio.language else True,
            keyterms_prompt=list(audio.vocabulary) or None,
            webhook_url=audio.callback_url or None,
            webhook_auth_header_name=audio.callback_header[0] if audio.callback_header else None,
            webhook_auth_header_value=audio.callback_header[1] if audio.callback_header else None,
        )
        before_paid_request()  # the upload can take minutes: check again before paying
        created = self._call("submit", lambda: aai_api.create_transcript(http, request))
        if not created.id:
            raise TransientError("provider_unavailable", "AssemblyAI returned no transcript id")
        return created.id

    def fetch(self, external_id: str) -> Transcript | None:
        """Read the transcript once: None while it is queued or processing."""
        got = self._call(
            "status check", lambda: _get_transcript(self._client.http_client, external_id)
        )
        status = str(got.get("status") or "")
        if status in ("queued", "processing"):
            return None
        if status == "error":
            raise PermanentError(
                "transcription_failed",
                f"AssemblyAI could not transcribe the audio: {got.get('error')}",
            )
        utterances = [
            Utterance(
                speaker=str(u.get("speaker") or "A"),
                start_ms=int(u["start"]),
                end_ms=int(u["end"]),
                text=u["text"].strip(),
            )
            for u in (got.get("utterances") or [])
            if u.get("text") and u["text"].strip()
        ]
        text = (got.get("text") or "").strip()
        if not utterances and text:
            words = got.get("words") or []
            start, end = (int(words[0]["start"]), int(words[-1]["end"])) if words else (0, 0)
            utterances = [Utterance("A", start, end, text)]
        if not utterances:
            raise PermanentError("no_speech", "The recording contains no recognisable speech")
        language = str(got.get("language_code") or "")
        duration = float(got["audio_duration"]) if got.get("audio_duration") else None
        detected = language if got.get("language_detection") else ""
        return Transcript(
            utterances=utterances,
            language=language,
            duration_seconds=duration,
            detected_language=detected,
        )


def _get_transcript(http: httpx.Client, external_id: str) -> dict[str, Any]:
    """GET /v2/transcript/{id} as plain JSON; a failure raises the SDK's TranscriptError."""
    response = http.get(f"/v2/transcript/{external_id}")
    if response.status_code != httpx.codes.OK:
        try:
            reason = response.json()["error"]
        except Exception:
            reason = response.text
        raise aai.types.TranscriptError(
            f"failed to retrieve transcript {external_id}: {reason}", response.status_code
        )
    got = _parse_transcript(response.content)
    if not isinstance(got, dict):
        raise aai.types.TranscriptError(f"transcript {external_id} is not a JSON object", None)
    return got


# A words array, up to its first closing bracket.
_WORDS = re.compile(rb'"words"\s*:\s*\[([^\]]*)\]')


def _without_words(match: re.Match[bytes]) -> bytes:
    # With an opening bracket inside (a nested array, a word holding one) the
    # first closing bracket may not be the array's own: left whole.
    return match.group() if b"[" in match.group(1) else b'"words": []'


def _parse_transcript(content: bytes) -> Any:
    """The transcript's JSON without its word arrays, when its utterances say everything.

    A finished transcript carries every word twice (the top-level `words` and
    each utterance's), with timings and confidences the pipeline never reads:
    about 1.7 MB of JSON for an hour, most of a fetch's CPU. The arrays are cut
    out before parsing, so only the utterances' own fields are built. An array
    holding an opening bracket is left whole; one whose first closing bracket
    is inside a string is cut short, which leaves JSON that does not parse (the
    rest of a string where a comma or a brace must come): then, and when no
    utterance has text (the single-speaker fallback reads the top-level words),
    the whole body is parsed.
    """
    try:
        got = json.loads(_WORDS.sub(_without_words, content))
    except ValueError:
        return json.loads(content)
    utterances = got.get("utterances") if isinstance(got, dict) else None
    if not isinstance(utterances, list) or not any(
        isinstance(u, dict) and isinstance(u.get("text"), str) and u["text"].strip()
        for u in utterances
    ):
        return json.loads(content)
    return got
