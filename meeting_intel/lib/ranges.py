"""Serving a local file with HTTP Range support (RFC 9110 §14), so an audio player can seek.

One byte range per request: a multi-range request is answered with the whole
file, which the RFC allows. The body streams from an async generator, so under
ASGI the file is never read into memory.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import http_date

CHUNK_BYTES = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.IGNORECASE)


class Unsatisfiable(Exception):
    """The range lies outside the file: answered with 416."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range `header` asks for, or None to send the whole file.

    Raises Unsatisfiable when the range starts past the end of the file or is
    an empty suffix. A malformed header, or several ranges, is ignored (None).
    """
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # "-N": the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)


async def _read(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    # File reads run in a thread so a slow disk never stalls the event loop.
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def ranged_file_response(request: HttpRequest, path: Path, content_type: str) -> HttpResponse:
    """200 with the whole file, 206 with the requested range, or 416.

    `If-Range` with a stale validator gets the whole file, so a player never
    splices bytes from two versions of a file.
    """
    stat = os.stat(path)
    size = stat.st_size
    etag = f'"{size:x}-{int(stat.st_mtime_ns):x}"'
    last_modified = http_date(stat.st_mtime)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": last_modified,
        "Cache-Control": "private, no-transform",
        "Content-Disposition": "inline",
    }
    byte_range = None
    if_range = request.headers.get("If-Range")
    if "Range" in request.headers and (if_range is None or if_range in (etag, last_modified)):
        try:
            byte_range = parse_range(request.headers["Range"], size)
        except Unsatisfiable:
            return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = byte_range if byte_range else (0, size - 1)
    length = end - start + 1 if size else 0
    headers["Content-Length"] = str(length)
    status = 206 if byte_range else 200
    if byte_range:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        return HttpResponse(status=status, content_type=content_type, headers=headers)
    return StreamingHttpResponse(
        _read(path, start, length), status=status, content_type=content_type, headers=headers
    )
