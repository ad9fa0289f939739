"""What a failure code means, in plain words: the only text about a failure that
end users, API clients and webhooks see.

The exception text behind a failure (vendor messages, SQL, host names) stays in
``Job.error_message``, which only the logs and Django admin show.
"""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, str] = {
    "provider_unavailable": "The transcription or analysis service was down and stayed down "
    "after several tries.",
    "provider_unreachable": "The transcription or analysis service could not be reached after "
    "several tries.",
    "provider_timeout": "The transcription or analysis service kept taking too long to answer.",
    "provider_rate_limited": "The transcription or analysis service was too busy to take the "
    "recording.",
    "provider_auth": "The service refused the platform's credentials; an administrator needs to "
    "fix the setup.",
    "transcription_failed": "The transcription service could not transcribe the recording.",
    "audio_rejected": "The transcription service could not use this file as audio.",
    "audio_too_large": "The recording is too large for the transcription service.",
    "unsupported_media": "The file is not a recording we can play: check that it has an audio "
    "track.",
    "unreadable_media": "The recording could not be read: it may be damaged.",
    "truncated_media": "The recording is incomplete: it may have been cut off while uploading.",
    "empty_file": "The recording is empty.",
    "file_too_large": "The recording is larger than the platform accepts.",
    "media_timeout": "Reading the recording took too long.",
    "no_speech": "No speech was found in the recording.",
    "no_audio": "The job has no recording attached.",
    "audio_missing": "The recording's file is no longer on the server.",
    "audio_url_refused": "The recording's address is not allowed (private or local addresses "
    "are refused).",
    "audio_url_unresolvable": "The recording's address could not be found.",
    "audio_url_unreachable": "The recording's address could not be reached.",
    "audio_url_timeout": "Downloading the recording took too long.",
    "audio_url_unavailable": "The server holding the recording kept answering with an error.",
    "audio_url_http_error": "The server holding the recording refused to hand it over.",
    "redelivery_limit": "Processing kept stopping part-way, so it was stopped for good.",
    "internal_error": "Something went wrong on our side while processing the recording.",
}
DEFAULT = MESSAGES["internal_error"]


def public_message(code: str) -> str:
    """The plain-language message for `code` (an unknown code gets the generic one)."""
    return MESSAGES.get(code, DEFAULT)


def public_error(code: str) -> dict[str, Any] | None:
    """SPEC's `error` of a job: `{code, message}` from the table, or None without a code."""
    return {"code": code, "message": public_message(code)} if code else None
