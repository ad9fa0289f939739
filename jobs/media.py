"""Recognising audio and video by content, not by name or declared type."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from typing import IO

# (offset, signature, container)
_SIGNATURES: list[tuple[int, bytes, str]] = [
    (0, b"RIFF", "wav"),
    (0, b"ID3", "mp3"),
    (0, b"OggS", "ogg"),
    (0, b"fLaC", "flac"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
    (4, b"ftyp", "mp4"),
    (0, b"#!AMR", "amr"),
    (0, b"FORM", "aiff"),
    (0, b"\x30\x26\xb2\x75", "wma"),
]


def sniff_container(head: bytes) -> str | None:
    """The media container the first bytes announce, or None if not media."""
    for offset, signature, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            if name == "wav" and head[8:12] not in (b"WAVE", b"AVI "):
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
