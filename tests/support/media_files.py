"""Recordings in every container the README lists, made from samples/standup.wav
with PyAV (the same FFmpeg libraries the product uses), so no test needs an
ffmpeg binary."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
from av.container import OutputContainer
from av.video.stream import VideoStream

SAMPLE_WAV = Path(__file__).resolve().parents[2] / "samples" / "standup.wav"


class Kind(NamedTuple):
    format: str
    codec: str
    rate: int
    video: bool = False


# README "Uploads": the containers a recording may come in.
CONTAINERS: dict[str, Kind] = {
    "wav": Kind("wav", "pcm_s16le", 16000),
    "mp3": Kind("mp3", "libmp3lame", 16000),
    "m4a": Kind("ipod", "aac", 16000),
    "ogg": Kind("ogg", "libopus", 48000),
    "opus": Kind("opus", "libopus", 48000),
    "webm": Kind("webm", "libopus", 48000),
    "flac": Kind("flac", "flac", 16000),
    # A real video file: a picture stream the product must skip.
    "mp4": Kind("mp4", "aac", 16000, video=True),
}

VIDEO_RATE = 5


def make_recording(extension: str, dst_dir: Path, seconds: float = 10.0) -> Path:
    """The first `seconds` of the sample as `dst_dir/meeting.<extension>`."""
    kind = CONTAINERS[extension]
    dst = dst_dir / f"meeting.{extension}"
    with av.open(str(SAMPLE_WAV)) as src, av.open(str(dst), mode="w", format=kind.format) as out:
        audio = out.add_stream(kind.codec, rate=kind.rate, layout="mono")
        video = _picture_stream(out) if kind.video else None
        resampler = av.AudioResampler(
            format=audio.codec_context.format.name, layout="mono", rate=kind.rate
        )
        wanted = int(seconds * kind.rate)
        done = 0
        for frame in src.decode(audio=0):
            frame.pts = None
            for chunk in resampler.resample(frame):
                out.mux(audio.encode(chunk))
                done += chunk.samples
            if done >= wanted:
                break
        out.mux(audio.encode(None))
        if video is not None:
            _mux_black_picture(out, video, seconds)
    return dst


def make_silent_film(dst: Path, seconds: float = 2.0) -> Path:
    """An mp4 with a picture and no sound at all."""
    with av.open(str(dst), mode="w") as out:
        _mux_black_picture(out, _picture_stream(out), seconds)
    return dst


def _picture_stream(out: OutputContainer) -> VideoStream:
    video = out.add_stream("mpeg4", rate=VIDEO_RATE)
    video.width = video.height = 64
    video.pix_fmt = "yuv420p"
    return video


def _mux_black_picture(out: OutputContainer, video: VideoStream, seconds: float) -> None:
    black = np.zeros((64, 64, 3), dtype=np.uint8)
    for index in range(int(seconds * VIDEO_RATE)):
        picture = av.VideoFrame.from_ndarray(black, format="rgb24")
        picture.pts, picture.time_base = index, Fraction(1, VIDEO_RATE)
        out.mux(video.encode(picture))
    out.mux(video.encode(None))
