"""Recognising audio and video by content, not by name or declared type.

``inspect_media`` is the gate every recording passes (uploads in the web
process, ``audio_url`` downloads in the worker):

1. the magic-byte sniff: not a known container → 415;
2. for RIFF/AIFF, the size the header declares against the bytes present;
3. PyAV (FFmpeg's libraries, in this process) must open the file and find
   an audio stream with a duration;
4. every packet of that stream is demuxed (no decoding, so it is I/O bound)
   and must reach close to the declared duration.

Steps 2–4 turn empty, truncated and corrupt files into 422 before a
provider is paid for them. No ffmpeg or ffprobe binary is involved: the
PyAV wheel carries the libraries. This module knows no app: it raises
MediaProblem, and callers map it to API errors or pipeline errors.
"""

from __future__ import annotations

import re
import struct
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from django.conf import settings

# A file whose packets end this far before its declared duration is truncated.
TRUNCATION_TOLERANCE = 0.9
TRUNCATION_SLACK_SECONDS = 1.0

# (offset, signature, container)
_SIGNATURES: list[tuple[int, bytes, str]] = [
    (0, b"RIFF", "wav"),
    (0, b"ID3", "mp3"),
    (0, b"OggS", "ogg"),
    (0, b"fLaC", "flac"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
    (4, b"ftyp", "mp4"),
    (4, b"moov", "mov"),
    (4, b"mdat", "mov"),
    (4, b"wide", "mov"),
    (4, b"free", "mov"),
    (0, b"#!AMR", "amr"),
    (0, b"FORM", "aiff"),
    (0, b"caff", "caf"),
    (0, b"\x30\x26\xb2\x75", "wma"),
    (0, b"\x00\x00\x01\xba", "mpeg"),
]


def sniff_container(head: bytes) -> str | None:
    """The media container the first bytes announce, or None if not media."""
    for offset, signature, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            if name == "wav" and head[8:12] not in (b"WAVE", b"AVI "):
                return None
            if name == "aiff" and head[8:12] not in (b"AIFF", b"AIFC"):
                return None
            return name
    # MPEG audio without ID3: an 11-bit frame sync; AAC ADTS: 12-bit sync.
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mpeg"
    return None


def read_head(fh: IO[bytes], size: int = 64) -> bytes:
    position = fh.tell()
    head = fh.read(size)
    fh.seek(position)
    return head


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_filename(name: str, default: str = "audio") -> str:
    """A filename with no directories, control characters or leading dots."""
    name = unicodedata.normalize("NFKC", name or "")
    name = PurePosixPath(name.replace("\\", "/")).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")[:120]
    return name or default


# --- Content inspection --------------------------------------------------------


class MediaProblem(Exception):
    """Why a file cannot be processed, with the API status that says so."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration_seconds: float


def _truncated() -> MediaProblem:
    return MediaProblem(
        422, "truncated_media", "The file is truncated: it ends before its content does."
    )


def _check_declared_size(path: Path, container: str, size: int) -> None:
    """RIFF (WAV) and AIFF state their length in the header; compare it with the file."""
    if container not in ("wav", "aiff"):
        return
    with path.open("rb") as fh:
        head = fh.read(12)
    if len(head) < 12:
        raise _truncated()
    declared = struct.unpack("<I" if container == "wav" else ">I", head[4:8])[0]
    # Streaming writers leave the size at 0 or 0xFFFFFFFF when they cannot seek back.
    if declared not in (0, 0xFFFFFFFF) and declared + 8 > size:
        raise _truncated()


@contextmanager
def open_audio(path: Path) -> Iterator[tuple[InputContainer, AudioStream]]:
    """The file opened with PyAV, and its first audio stream.

    Raises MediaProblem ``unreadable_media`` when FFmpeg's demuxers cannot
    read the file and ``no_audio`` when it holds no audio stream (a video's
    picture streams and any second audio track are the caller's to ignore).
    """
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        raise MediaProblem(
            422,
            "unreadable_media",
            "The file cannot be read as audio or video; it may be truncated or corrupt.",
        ) from None
    with container:
        if not container.streams.audio:
            raise MediaProblem(422, "no_audio", "The file has no audio track to transcribe.")
        yield container, container.streams.audio[0]


def declared_seconds(container: InputContainer, stream: AudioStream) -> float | None:
    """The audio's duration as the file states it: the stream's, else the container's.

    Matroska/WebM state only the container's duration; None when neither is known.
    """
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _demuxed_seconds(container: InputContainer, stream: AudioStream) -> float:
    """Read every packet of `stream` without decoding; how far they reach (seconds)."""
    reached = 0.0
    start = stream.start_time or 0
    try:
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            end = packet.pts - start + (packet.duration or 0)
            reached = max(reached, float(end * packet.time_base))
    except av.FFmpegError:
        raise _truncated() from None
    return reached


def inspect_media(path: Path) -> MediaInfo:
    """Check the file at `path` is whole, decodable audio or video; raise MediaProblem if not."""
    size = path.stat().st_size
    if size == 0:
        raise MediaProblem(422, "empty_file", "The file is empty.")
    with path.open("rb") as fh:
        container = sniff_container(fh.read(64))
    if container is None:
        raise MediaProblem(
            415, "unsupported_media", "The file is not a recognised audio or video format."
        )
    _check_declared_size(path, container, size)
    with open_audio(path) as (opened, stream):
        declared = declared_seconds(opened, stream)
        if not declared:
            raise MediaProblem(422, "no_duration", "The file's audio has no duration.")
        reached = _demuxed_seconds(opened, stream)
    if reached < declared * TRUNCATION_TOLERANCE - TRUNCATION_SLACK_SECONDS:
        raise _truncated()
    return MediaInfo(container, declared)


def probe_duration(path: Path) -> float | None:
    """Seconds of audio the file declares, or None if unknown or the file has no audio."""
    try:
        with open_audio(path) as (container, stream):
            return declared_seconds(container, stream)
    except MediaProblem:
        return None


def inspect_upload(upload: Any) -> MediaInfo:
    """inspect_media for a Django UploadedFile, also enforcing UPLOAD_MAX_BYTES.

    Large uploads are already on disk; small in-memory ones are copied to a
    temporary file so FFmpeg's demuxers can seek in them.
    """
    if upload.size > settings.UPLOAD_MAX_BYTES:
        raise MediaProblem(
            413, "file_too_large", f"The file exceeds {settings.UPLOAD_MAX_BYTES} bytes."
        )
    if hasattr(upload, "temporary_file_path"):
        return inspect_media(Path(upload.temporary_file_path()))
    with tempfile.NamedTemporaryFile(suffix=".upload") as copy:
        upload.seek(0)
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        upload.seek(0)
        return inspect_media(Path(copy.name))
