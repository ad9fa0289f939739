"""Audio conversion with ffmpeg, shared by the transcribers that need it.

ffmpeg decodes whatever a user uploads (mp3, m4a, wav, ogg, webm, mp4, flac,
and more), so providers see one known format. Each call runs ffmpeg in a
subprocess with a timeout. Failures become pipeline errors:
PermanentError("unsupported_media") when the file holds no decodable audio,
PermanentError("ffmpeg_missing") when ffmpeg is not installed, and
TransientError("media_timeout") when ffmpeg runs past its time limit (a
loaded machine is the usual cause, so a later attempt may succeed).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from jobs.errors import PermanentError, TransientError

# Decoding is far faster than real time; ten minutes covers many hours of audio.
CONVERT_TIMEOUT_SECONDS = 600.0
PROBE_TIMEOUT_SECONDS = 30.0
SAMPLE_RATE = 16000


def to_wav16k(src: Path, dst_dir: Path) -> Path:
    """Convert the first audio stream of `src` to 16 kHz mono s16le WAV.

    Returns a new file inside `dst_dir` (the caller owns and removes it).
    Video streams are ignored; a file without an audio stream is unsupported.
    """
    return _convert(src, dst_dir, ".wav", ["-c:a", "pcm_s16le", "-f", "wav"])


def to_mp3_16k(src: Path, dst_dir: Path, bitrate: str = "32k") -> Path:
    """Convert `src` to 16 kHz mono MP3: about 240 kB a minute at 32 kbit/s.

    For uploads with a size limit; speech at 16 kHz loses nothing a
    recogniser uses. Same contract as `to_wav16k`.
    """
    return _convert(src, dst_dir, ".mp3", ["-c:a", "libmp3lame", "-b:a", bitrate, "-f", "mp3"])


def probe_duration(path: Path) -> float | None:
    """Seconds of audio per ffprobe, or None if unknown or the file has no audio."""
    command = [
        "ffprobe", "-v", "error", "-select_streams", "a:0",
        "-show_entries", "stream=duration:format=duration", "-of", "json", str(path),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=False
        )
        found = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    streams = found.get("streams") or []
    if not streams:  # ffprobe also "reads" text files, as pictures: no audio is no duration
        return None
    # Matroska/WebM give only the container's duration; prefer the stream's.
    for value in (streams[0].get("duration"), found.get("format", {}).get("duration")):
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


def _convert(src: Path, dst_dir: Path, suffix: str, codec_args: list[str]) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    # A fresh name per call: two conversions of one source never collide.
    fd, name = tempfile.mkstemp(prefix=f"{src.stem[:40]}-", suffix=suffix, dir=dst_dir)
    os.close(fd)  # ffmpeg writes the file by name
    dst = Path(name)
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(src),
        # Only the first audio stream: a video's picture and a second
        # language track are ignored, and no audio at all is an error.
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
        *codec_args, str(dst),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError as exc:
        dst.unlink(missing_ok=True)
        raise PermanentError("ffmpeg_missing", "ffmpeg is not installed on this server") from exc
    except subprocess.TimeoutExpired as exc:
        dst.unlink(missing_ok=True)
        raise TransientError(
            "media_timeout", f"ffmpeg took more than {CONVERT_TIMEOUT_SECONDS:.0f} s to decode"
        ) from exc
    if done.returncode != 0 or dst.stat().st_size == 0:
        dst.unlink(missing_ok=True)
        raise PermanentError("unsupported_media", _describe_failure(src, done.stderr))
    return dst


def _describe_failure(src: Path, stderr: str) -> str:
    """ffmpeg's last complaint, without the server's directory layout."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = lines[-1].replace(str(src), src.name) if lines else "no reason given"
    return f"The file holds no audio that can be decoded ({reason[:300]})"
