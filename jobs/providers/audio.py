"""Audio conversion in this process with PyAV, for the transcribers that need it.

PyAV's wheel carries FFmpeg's libraries, so whatever a user uploads (mp3,
m4a, wav, ogg/opus, webm, mp4, flac, and more) decodes without an ffmpeg
binary, and providers see one known format. Failures become pipeline errors:
PermanentError("unsupported_media") when the file holds no decodable audio.
Packets that fail to decode are skipped, as the ffmpeg command line does, so
one damaged frame does not lose a meeting; a file none of whose audio decodes
is unsupported.
"""

from __future__ import annotations

import os
import tempfile
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
from av.audio.frame import AudioFrame

from jobs.errors import PermanentError
from meeting_intel.lib.media import MediaProblem, open_audio, probe_duration

SAMPLE_RATE = 16000

__all__ = ["SAMPLE_RATE", "pcm16k", "pcm16k_chunks", "probe_duration", "to_mp3_16k", "to_wav16k"]


def to_wav16k(src: Path, dst_dir: Path) -> Path:
    """Convert the first audio stream of `src` to 16 kHz mono s16le WAV.

    Returns a new file inside `dst_dir` (the caller owns and removes it).
    Video streams are ignored; a file without an audio stream is unsupported.
    """
    return _convert(src, dst_dir, ".wav", _write_wav)


def to_mp3_16k(src: Path, dst_dir: Path, bitrate: str = "32k") -> Path:
    """Convert `src` to 16 kHz mono MP3: about 240 kB a minute at 32 kbit/s.

    For uploads with a size limit; speech at 16 kHz loses nothing a
    recogniser uses. Same contract as `to_wav16k`.
    """
    bits_per_second = int(bitrate.rstrip("k")) * 1000
    return _convert(src, dst_dir, ".mp3", lambda s, d: _write_mp3(s, d, bits_per_second))


def _convert(src: Path, dst_dir: Path, suffix: str, write: Callable[[Path, Path], int]) -> Path:
    """Run `write(src, dst)` into a fresh file; no file is left behind on failure."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    # A fresh name per call: two conversions of one source never collide.
    fd, name = tempfile.mkstemp(prefix=f"{src.stem[:40]}-", suffix=suffix, dir=dst_dir)
    os.close(fd)
    dst = Path(name)
    try:
        samples = write(src, dst)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    if not samples:
        dst.unlink(missing_ok=True)
        raise _no_audio(src, "no audio samples decoded")
    return dst


def pcm16k_chunks(src: Path) -> Iterator[np.ndarray]:
    """The whole recording as 16 kHz mono float32 chunks in [-1, 1], in order.

    The same samples `to_wav16k` writes (s16, scaled), without a file: a
    two-hour recording streams through in chunks of a few thousand samples.
    Raises PermanentError("unsupported_media") like `to_wav16k`.
    """
    decoded = 0
    for frame in _frames(src, "s16"):
        decoded += frame.samples
        yield _scaled(frame)
    if not decoded:
        raise _no_audio(src, "no audio samples decoded")


def pcm16k(src: Path, start: int, stop: int) -> np.ndarray:
    """Samples `start` to `stop` (16 kHz, mono, float32) of the recording.

    Seeks near `start` first, so a window late in a long recording costs its
    own length, not the whole file's: the first decoded frame's timestamp
    says where the samples begin. Formats without timestamps are decoded
    from the beginning. Fewer samples come back past the end of the audio.
    """
    parts: list[np.ndarray] = []
    position: int | None = None
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    try:
        with open_audio(src) as (container, stream):
            seek_to = max(0.0, start / SAMPLE_RATE - 1.0)  # a second early: seeks land near
            if seek_to > 0 and stream.time_base:
                container.seek(int(seek_to / stream.time_base), stream=stream, backward=True)
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    continue
                for frame in decoded:
                    if position is None:
                        begins = 0.0
                        if seek_to > 0 and frame.pts is not None and frame.time_base:
                            begins = float(frame.pts * frame.time_base)
                        position = max(0, round(begins * SAMPLE_RATE))
                    frame.pts = None
                    outs = [frame] if _already(frame, "s16") else resampler.resample(frame)
                    for out in outs:
                        position = _keep(parts, _scaled(out), position, start, stop)
                if position is not None and position >= stop:
                    return _joined(parts)
            for out in resampler.resample(None):
                position = _keep(parts, _scaled(out), position or 0, start, stop)
    except MediaProblem as problem:
        raise _no_audio(src, problem.message) from None
    except av.FFmpegError as exc:
        raise _no_audio(src, str(exc)) from None
    return _joined(parts)


def _already(frame: AudioFrame, sample_format: str) -> bool:
    """Whether `frame` is already 16 kHz mono in `sample_format` (a 16 kHz mono WAV)."""
    return (
        frame.sample_rate == SAMPLE_RATE
        and frame.format.name == sample_format
        and len(frame.layout.channels) == 1
    )


def _scaled(frame: AudioFrame) -> np.ndarray:
    return frame.to_ndarray().reshape(-1).astype(np.float32) / 32768.0


def _keep(parts: list[np.ndarray], chunk: np.ndarray, position: int, start: int, stop: int) -> int:
    """Append the part of `chunk` (which begins at sample `position`) inside [start, stop)."""
    end = position + len(chunk)
    lo, hi = max(start, position), min(stop, end)
    if hi > lo:
        parts.append(chunk[lo - position : hi - position])
    return end


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _write_wav(src: Path, dst: Path) -> int:
    written = 0
    with wave.open(str(dst), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        for frame in _frames(src, "s16"):
            wav.writeframes(frame.to_ndarray().tobytes())
            written += frame.samples
    return written


def _write_mp3(src: Path, dst: Path, bits_per_second: int) -> int:
    written = 0
    with av.open(str(dst), mode="w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = bits_per_second
        for frame in _frames(src, stream.codec_context.format.name):
            written += frame.samples
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return written


def _frames(src: Path, sample_format: str) -> Iterator[AudioFrame]:
    """The first audio stream of `src`, decoded and resampled to 16 kHz mono."""
    resampler = av.AudioResampler(format=sample_format, layout="mono", rate=SAMPLE_RATE)
    try:
        with open_audio(src) as (container, stream):
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    continue  # a damaged packet: skip it, as ffmpeg does
                for frame in decoded:
                    if _already(frame, sample_format):
                        yield frame  # resampling to itself costs more than decoding
                        continue
                    frame.pts = None  # the resampler keeps its own clock
                    yield from resampler.resample(frame)
        yield from resampler.resample(None)
    except MediaProblem as problem:
        raise _no_audio(src, problem.message) from None
    except av.FFmpegError as exc:
        raise _no_audio(src, str(exc)) from None


def _no_audio(src: Path, reason: str) -> PermanentError:
    """The decoder's complaint, without the server's directory layout."""
    reason = reason.replace(str(src), src.name).replace(str(src.parent), "")
    return PermanentError(
        "unsupported_media", f"The file holds no audio that can be decoded ({reason[:300]})"
    )
