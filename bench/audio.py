"""Audio for the benchmark: a tiny WAV for pipeline runs, and a streamed 500 MB upload.

The fake providers never decode audio, so the content is silence; only the
container header has to be right for the platform's upload check.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator

SAMPLE_RATE = 8_000
CHUNK = 1024 * 1024


def wav_header(data_bytes: int) -> bytes:
    """A 16-bit mono PCM WAV header for `data_bytes` bytes of samples."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def small_wav(seconds: float = 1.0) -> bytes:
    """A short silent WAV (16 kB a second)."""
    data = int(SAMPLE_RATE * seconds) * 2
    return wav_header(data) + bytes(data)


class MultipartUpload:
    """A multipart/form-data body with one `audio` WAV of `size` bytes, generated as it is sent.

    Nothing is held in memory but one chunk, so the client's own memory does
    not hide or inflate the server's.
    """

    def __init__(self, size: int, title: str = "bench upload") -> None:
        self.boundary = uuid.uuid4().hex
        self.data_bytes = size - 44
        self._head = (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="title"\r\n\r\n'
            f"{title}\r\n"
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="audio"; filename="long.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode() + wav_header(self.data_bytes)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self.data_bytes + len(self._tail)

    def chunks(self) -> Iterator[bytes]:
        yield self._head
        block = bytes(CHUNK)
        remaining = self.data_bytes
        while remaining > 0:
            yield block[: min(CHUNK, remaining)]
            remaining -= CHUNK
        yield self._tail
