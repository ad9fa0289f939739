"""A fake of AssemblyAI's v2 REST API: upload, submit, poll and completion webhook.

Point the official SDK at it with::

    client = aai.Client(settings=aai.Settings(api_key=fake.api_key, base_url=fake.url))

The SDK's own paths already start with ``/v2``, so the base URL carries no
path (``ASSEMBLYAI_BASE_URL=fake.url`` works too, if set before ``assemblyai``
is imported).

Routes, by the names that ``route=`` fault arguments take:

* ``upload``: ``POST /v2/upload``, raw bytes; answers ``{"upload_url": f"{url}/files/<uuid>"}``.
* ``submit``: ``POST /v2/transcript``, JSON; answers the transcript with status ``queued``.
* ``get_transcript``: ``GET /v2/transcript/{id}``; answers ``processing`` until
  ``processing_seconds`` have passed since the submission, then the final transcript.

Every request needs ``authorization: <api_key>`` (no "Bearer"), else 401 with
``{"error": "Authentication error, API token missing/invalid"}``. Errors are
``{"error": message}``, as the SDK expects.

A final transcript is ``completed`` with the words of :attr:`FakeAssemblyAI.utterances`
(timed by :func:`tests.fakes.script.time_script`, milliseconds) or, when scripted,
``error`` with an ``error`` message. ``utterances`` and the words' ``speaker`` are
only filled when the submission asked for ``speaker_labels``, as in the real API.
An ``audio_url`` pointing at this fake's ``/files/`` that was never uploaded
ends in ``error`` too.

When the submission carries ``webhook_url`` and :attr:`FakeAssemblyAI.send_callbacks`
is true, the fake POSTs ``{"transcript_id", "status"}`` there once the transcript is
final, with ``webhook_auth_header_name: webhook_auth_header_value`` when given:
a single attempt from a daemon thread, 5 s timeout, recorded in :attr:`callbacks`.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.fakes.base import FakeServer, Reply, Request, json_reply
from tests.fakes.script import DEFAULT_MEETING, Script, TimedWord, duration_ms, time_script

NO_AUDIO_ERROR = (
    "File does not appear to contain audio. File type is application/octet-stream (data)."
)
WORD_CONFIDENCE = 0.95


@dataclass(frozen=True)
class CallbackResult:
    """One webhook delivery attempt; ``status_code`` is ``None`` when no HTTP answer came."""

    transcript_id: str
    url: str
    status_code: int | None
    error: str | None
    timestamp: float


@dataclass(frozen=True)
class _Outcome:
    """How a transcript ends: with ``error`` when set, else completed (with no speech when ``silent``)."""

    error: str | None = None
    silent: bool = False


@dataclass
class _Transcript:
    request: dict[str, Any]
    pending: dict[str, Any]
    final: dict[str, Any]
    submitted_at: float
    ready_at: float


class FakeAssemblyAI(FakeServer):
    """Fake AssemblyAI server; see the module docstring for the protocol.

    Attributes that tests may change at any time (read at each submission):
    ``api_key``, ``utterances`` (the ``(speaker, text)`` script),
    ``processing_seconds``, ``ms_per_word``, ``gap_ms``, ``send_callbacks``,
    ``detected_language``.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-aai-key",
        utterances: Script = DEFAULT_MEETING,
        processing_seconds: float = 0.0,
        send_callbacks: bool = True,
        ms_per_word: int = 300,
        gap_ms: int = 700,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.utterances: list[tuple[str, str]] = list(utterances)
        self.processing_seconds = processing_seconds
        self.send_callbacks = send_callbacks
        self.ms_per_word = ms_per_word
        self.gap_ms = gap_ms
        # The language a submission with ``language_detection`` is found to be in.
        self.detected_language = "en"
        self._uploads: dict[str, bytes] = {}
        self._submissions: list[dict[str, Any]] = []
        self._transcripts: dict[str, _Transcript] = {}
        self._outcomes: deque[_Outcome] = deque()
        self._callbacks: list[CallbackResult] = []
        self._callback_added = threading.Condition(self._lock)
        self._timers: list[threading.Timer] = []
        self._add_route("upload", "POST", r"/v2/upload", self._upload)
        self._add_route("submit", "POST", r"/v2/transcript", self._submit)
        self._add_route("get_transcript", "GET", r"/v2/transcript/(?P<id>[^/]+)", self._get)

    def stop(self) -> None:
        """Cancel pending webhook deliveries, then stop serving."""
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        super().stop()

    # -- scripting -------------------------------------------------------------------

    def fail_next_transcripts(self, count: int = 1, message: str = NO_AUDIO_ERROR) -> None:
        """Make the next ``count`` submitted transcripts end with status ``error`` and ``message``."""
        with self._lock:
            self._outcomes.extend([_Outcome(error=message)] * count)

    def silence_next_transcripts(self, count: int = 1) -> None:
        """Make the next ``count`` transcripts complete with no speech: empty text, no words or utterances."""
        with self._lock:
            self._outcomes.extend([_Outcome(silent=True)] * count)

    # -- inspection --------------------------------------------------------------------

    @property
    def uploads(self) -> dict[str, bytes]:
        """Uploaded files by id (the last path segment of their ``upload_url``)."""
        with self._lock:
            return dict(self._uploads)

    @property
    def submissions(self) -> list[dict[str, Any]]:
        """JSON bodies of every accepted ``POST /v2/transcript``, in order."""
        with self._lock:
            return list(self._submissions)

    @property
    def callbacks(self) -> list[CallbackResult]:
        """Webhook delivery attempts so far."""
        with self._lock:
            return list(self._callbacks)

    def transcript(self, transcript_id: str) -> dict[str, Any]:
        """The transcript object a ``GET`` would answer right now."""
        with self._lock:
            return self._view(self._transcripts[transcript_id])

    def wait_for_callbacks(self, count: int = 1, timeout: float = 5.0) -> list[CallbackResult]:
        """Block until ``count`` webhook attempts are recorded; raise ``TimeoutError`` after ``timeout``."""
        with self._callback_added:
            if not self._callback_added.wait_for(lambda: len(self._callbacks) >= count, timeout):
                raise TimeoutError(
                    f"{len(self._callbacks)} of {count} webhook callbacks after {timeout}s"
                )
            return list(self._callbacks)

    @property
    def max_concurrent_transcriptions(self) -> int:
        """Most transcripts submitted and not yet final at one instant (0 when ``processing_seconds`` is 0)."""
        return self.max_concurrent_transcriptions_since(0.0)

    def max_concurrent_transcriptions_since(self, since: float) -> int:
        """max_concurrent_transcriptions among those submitted from monotonic ``since``."""
        with self._lock:
            spans = [
                (t.submitted_at, t.ready_at)
                for t in self._transcripts.values()
                if t.submitted_at >= since
            ]
        return max((sum(1 for s, r in spans if s <= start < r) for start, _ in spans), default=0)

    # -- FakeServer hooks ------------------------------------------------------------

    def _authorize(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") == self.api_key:
            return None
        return self._error(401, "Authentication error, API token missing/invalid")

    def _error(self, status: int, message: str) -> Reply:
        return json_reply({"error": message}, status)

    # -- routes ----------------------------------------------------------------------

    def _upload(self, request: Request) -> Reply:
        upload_id = str(uuid.uuid4())
        with self._lock:
            self._uploads[upload_id] = request.body
        return json_reply({"upload_url": f"{self.url}/files/{upload_id}"})

    def _submit(self, request: Request) -> Reply:
        body = request.json
        if not isinstance(body, dict) or not isinstance(body.get("audio_url"), str):
            return self._error(400, "A JSON body with an audio_url is required")
        now = time.monotonic()
        common = {key: value for key, value in body.items() if key != "webhook_auth_header_value"}
        common.update(id=str(uuid.uuid4()), webhook_auth=bool(body.get("webhook_auth_header_name")))
        if body.get("language_detection"):
            common.update(language_code=self.detected_language, language_confidence=0.98)
        else:
            common.setdefault("language_code", "en_us")
        with self._lock:
            outcome = self._outcomes.popleft() if self._outcomes else _Outcome()
            if outcome == _Outcome() and self._unknown_upload(body["audio_url"]):
                outcome = _Outcome(error=f"Download error, unable to download {body['audio_url']}")
            transcript = _Transcript(
                request=body,
                pending={**common, "status": "queued"},
                final=self._final(common, outcome, bool(body.get("speaker_labels"))),
                submitted_at=now,
                ready_at=now + self.processing_seconds,
            )
            self._submissions.append(body)
            self._transcripts[common["id"]] = transcript
            if body.get("webhook_url") and self.send_callbacks:
                timer = threading.Timer(self.processing_seconds, self._deliver, (transcript,))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
        return json_reply(transcript.pending)

    def _get(self, request: Request) -> Reply:
        with self._lock:
            transcript = self._transcripts.get(request.params["id"])
            if transcript is None:
                return self._error(404, "Transcript lookup error, transcript id not found")
            return json_reply(self._view(transcript))

    # -- helpers -----------------------------------------------------------------------

    def _unknown_upload(self, audio_url: str) -> bool:
        prefix = f"{self.url}/files/"
        return audio_url.startswith(prefix) and audio_url[len(prefix) :] not in self._uploads

    def _view(self, transcript: _Transcript) -> dict[str, Any]:
        if time.monotonic() >= transcript.ready_at:
            return dict(transcript.final)
        return {**transcript.pending, "status": "processing"}

    def _final(
        self, common: dict[str, Any], outcome: _Outcome, speaker_labels: bool
    ) -> dict[str, Any]:
        if outcome.error:
            return {**common, "status": "error", "error": outcome.error}
        script = [] if outcome.silent else self.utterances
        turns = time_script(script, ms_per_word=self.ms_per_word, gap_ms=self.gap_ms)

        def word(w: TimedWord) -> dict[str, Any]:
            speaker = w.speaker if speaker_labels else None
            return {
                "text": w.text,
                "start": w.start,
                "end": w.end,
                "confidence": WORD_CONFIDENCE,
                "speaker": speaker,
            }

        utterances = [
            {
                "speaker": t.speaker,
                "start": t.start,
                "end": t.end,
                "confidence": WORD_CONFIDENCE,
                "text": t.text,
                "words": [word(w) for w in t.words],
            }
            for t in turns
        ]
        return {
            **common,
            "status": "completed",
            "text": " ".join(t.text for t in turns),
            "words": [word(w) for t in turns for w in t.words],
            "utterances": utterances if speaker_labels else None,
            "confidence": WORD_CONFIDENCE if turns else None,
            "audio_duration": math.ceil(duration_ms(turns) / 1000),
        }

    def _deliver(self, transcript: _Transcript) -> None:
        request = transcript.request
        headers = {"Content-Type": "application/json"}
        if request.get("webhook_auth_header_name") and request.get("webhook_auth_header_value"):
            headers[request["webhook_auth_header_name"]] = request["webhook_auth_header_value"]
        payload = {"transcript_id": transcript.final["id"], "status": transcript.final["status"]}
        post = urllib.request.Request(
            request["webhook_url"], json.dumps(payload).encode(), headers, method="POST"
        )
        status: int | None = None
        error: str | None = None
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                post, timeout=5
            ) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:
            error = repr(exc)
        with self._callback_added:
            transcript.final["webhook_status_code"] = status
            self._callbacks.append(
                CallbackResult(
                    payload["transcript_id"],
                    request["webhook_url"],
                    status,
                    error,
                    time.monotonic(),
                )
            )
            self._callback_added.notify_all()
