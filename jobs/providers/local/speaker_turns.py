"""Speaker turns for recognisers that return words but no speakers.

Two honest heuristics, no trained diarisation model:

1. Turns: an energy detector over 10 ms blocks finds speech; a pause of
   `MIN_PAUSE_SECONDS` or more starts a new turn. Two people talking without
   a pause between them, or over each other, stay in one turn.
2. Labels: each turn gets a voice print — its median pitch (autocorrelation,
   60 to 400 Hz) and its mean cepstrum (MFCC-like, 12 coefficients) — and turns
   are clustered bottom-up (average linkage) until the closest clusters are
   further apart than `MERGE_BELOW`, and at most `max_speakers` remain.
   This separates voices of clearly different pitch or timbre well (a man
   and a woman; the shipped sample's three voices); two similar voices are
   often merged, and with no expected count one person whose voice varies a
   lot may be split. Labels are "A", "B", ... in order of first appearance.

Input everywhere is mono float32 PCM at `SAMPLE_RATE`, values in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
MIN_PAUSE_SECONDS = 0.7
# Shorter bursts are clicks and breaths, not speech.
MIN_TURN_SECONDS = 0.2
# Speech is this many dB above the quietest tenth of the recording, and never
# more than SPEECH_RANGE_DB below its loud peaks.
SPEECH_ABOVE_FLOOR_DB = 10.0
SPEECH_RANGE_DB = 40.0
# Voice-print distance: a pitch gap of PITCH_SCALE semitones weighs as much as
# a cepstral gap of TIMBRE_SCALE. Tuned on the espeak-ng voices of samples/
# only (one voice's turns within ~1.3, different voices from ~2.5 up), so
# treat it as a starting point for real recordings, not a measured optimum.
PITCH_SCALE_SEMITONES = 3.0
TIMBRE_SCALE = 20.0
MERGE_BELOW = 2.0
# Voice prints read at most this many 10 ms frames per turn, evenly spread,
# so a long monologue costs no more memory than a 20-second turn.
MAX_PRINT_FRAMES = 2000

_BLOCK = SAMPLE_RATE // 100  # 10 ms


@dataclass(frozen=True)
class Turn:
    start_ms: int
    end_ms: int


def speech_turns(samples: np.ndarray) -> list[Turn]:
    """The stretches of speech, split at pauses of MIN_PAUSE_SECONDS or more."""
    return turns_from_energy(block_energy(samples))


def block_energy(samples: np.ndarray) -> np.ndarray:
    """Mean power of each whole 10 ms block of `samples` (a trailing part block is left out).

    Blocks are independent, so a long recording can be read in chunks whose
    results are concatenated (``turns_from_energy`` takes the whole series).
    """
    n = len(samples) // _BLOCK
    blocks = samples[: n * _BLOCK].reshape(n, _BLOCK)
    return np.einsum("ij,ij->i", blocks, blocks) / _BLOCK


def turns_from_energy(energy: np.ndarray) -> list[Turn]:
    """Turns from the 10 ms block energies of a whole recording (see ``speech_turns``)."""
    if len(energy) == 0:
        return []
    # Averaged over 30 ms, so one quiet 10 ms block mid-word is not silence.
    energy = np.convolve(energy, np.ones(3) / 3, mode="same")
    db = 10 * np.log10(energy + 1e-10)
    threshold = max(
        np.percentile(db, 10) + SPEECH_ABOVE_FLOOR_DB, np.percentile(db, 99) - SPEECH_RANGE_DB
    )
    loud = np.flatnonzero(db > threshold)
    if len(loud) == 0:
        return []
    max_gap = int(MIN_PAUSE_SECONDS * 100)
    breaks = np.flatnonzero(np.diff(loud) >= max_gap)
    starts = np.concatenate(([loud[0]], loud[breaks + 1]))
    ends = np.concatenate((loud[breaks], [loud[-1]])) + 1
    return [
        Turn(int(s) * 10, int(e) * 10)
        for s, e in zip(starts, ends, strict=True)
        if (e - s) >= MIN_TURN_SECONDS * 100
    ]


def label_turns(samples: np.ndarray, turns: list[Turn], max_speakers: int | None) -> list[str]:
    """One speaker label per turn ("A", "B", ...), at most `max_speakers` distinct."""
    per_ms = SAMPLE_RATE // 1000
    return label_prints(
        [voice_print(samples[t.start_ms * per_ms : t.end_ms * per_ms]) for t in turns],
        max_speakers,
    )


def label_prints(prints: list[VoicePrint], max_speakers: int | None) -> list[str]:
    """One label per voice print, clustered over all of them (see ``label_turns``).

    Prints are small (13 numbers), so a long recording's turns can be printed
    window by window and labelled together at the end.
    """
    if not prints:
        return []
    members = _cluster(_distances(prints), max(1, max_speakers or len(prints)))
    # Name clusters in order of first appearance, as a reader expects.
    labels = [""] * len(prints)
    for index, cluster in enumerate(sorted(members, key=min)):
        for turn in cluster:
            labels[turn] = _label(index)
    return labels


def _cluster(distance: np.ndarray, limit: int) -> list[list[int]]:
    """Average-linkage agglomeration (Lance-Williams updates on one matrix)."""
    distance = distance.astype(float)
    np.fill_diagonal(distance, np.inf)
    members: dict[int, list[int]] = {i: [i] for i in range(len(distance))}
    while len(members) > 1:
        i, j = np.unravel_index(np.argmin(distance), distance.shape)
        if distance[i, j] >= MERGE_BELOW and len(members) <= limit:
            break
        ni, nj = len(members[i]), len(members[j])
        distance[i, :] = distance[:, i] = (ni * distance[i] + nj * distance[j]) / (ni + nj)
        # Merged-away clusters and the diagonal never win the argmin again.
        distance[j, :] = distance[:, j] = np.inf
        distance[i, i] = np.inf
        members[i] += members.pop(j)
    return list(members.values())


def _label(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"S{index + 1}"


@dataclass(frozen=True)
class VoicePrint:
    pitch_semitones: float  # NaN when the turn has no voiced frame
    cepstrum: np.ndarray

    def to_json(self) -> dict[str, object]:
        pitch = None if np.isnan(self.pitch_semitones) else float(self.pitch_semitones)
        return {"pitch": pitch, "cepstrum": [float(c) for c in self.cepstrum]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> VoicePrint:
        pitch = data["pitch"]
        return cls(
            np.nan if pitch is None else float(pitch),  # type: ignore[arg-type]
            np.array(data["cepstrum"], dtype=float),
        )


def _distances(prints: list[VoicePrint]) -> np.ndarray:
    """Pairwise voice-print distances; see PITCH_SCALE_SEMITONES and TIMBRE_SCALE."""
    cepstra = np.array([p.cepstrum for p in prints])
    pitch = np.array([p.pitch_semitones for p in prints])
    # |a-b|² = |a|² + |b|² - 2a·b keeps memory at n² for thousands of turns.
    squared = np.einsum("ij,ij->i", cepstra, cepstra)
    gram = squared[:, None] + squared[None, :] - 2 * cepstra @ cepstra.T
    timbre = np.sqrt(np.clip(gram, 0, None)) / TIMBRE_SCALE
    pitch_gap = np.abs(pitch[:, None] - pitch[None, :]) / PITCH_SCALE_SEMITONES
    # Without a pitch to compare, timbre alone decides, weighted to the same range.
    return np.where(np.isnan(pitch_gap), 2 * timbre, timbre + pitch_gap)


def _frames(segment: np.ndarray, size: int) -> np.ndarray:
    """Up to MAX_PRINT_FRAMES windows of `size` samples, 10 ms apart or spread evenly."""
    count = (len(segment) - size) // _BLOCK + 1
    if count <= 0:
        return np.zeros((0, size), dtype=np.float32)
    starts = np.linspace(0, len(segment) - size, min(count, MAX_PRINT_FRAMES)).astype(int)
    return segment[starts[:, None] + np.arange(size)[None, :]]


def voice_print(segment: np.ndarray) -> VoicePrint:
    """The pitch and timbre of one turn's samples."""
    frames = _frames(segment, 640)  # 40 ms: two periods of a 50 Hz voice
    if len(frames) == 0:
        return VoicePrint(np.nan, np.zeros(12))
    frames = frames - frames.mean(axis=1, keepdims=True)
    power = np.mean(frames**2, axis=1)
    loud = power > np.percentile(power, 30)

    # Pitch: the strongest autocorrelation lag between 400 Hz and 60 Hz.
    spectrum = np.fft.rfft(frames, 1024)
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[:, : hi + 1]
    lag = lo + np.argmax(acf[:, lo:hi], axis=1)
    strength = acf[np.arange(len(acf)), lag] / (acf[:, 0] + 1e-10)
    voiced = loud & (strength > 0.5)
    pitch = float(np.median(12 * np.log2(SAMPLE_RATE / lag[voiced]))) if voiced.any() else np.nan

    # Timbre: mean log-mel cepstrum of the louder frames (25 ms, Hamming).
    short = frames[loud][:, :400] * np.hamming(400)
    mel = np.log(np.abs(np.fft.rfft(short, 512)) ** 2 @ _MEL.T + 1e-8)
    cepstrum = (mel @ _DCT.T)[:, 1:13].mean(axis=0) if len(short) else np.zeros(12)
    return VoicePrint(pitch, cepstrum)


def _mel_filterbank(
    bands: int = 24, fft_size: int = 512, low: float = 80, high: float = 7600
) -> np.ndarray:
    def to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 2595 * np.log10(1 + np.asarray(hz) / 700)

    edges = 700 * (10 ** (np.linspace(to_mel(low), to_mel(high), bands + 2) / 2595) - 1)
    freqs = np.fft.rfftfreq(fft_size, 1 / SAMPLE_RATE)
    bank = np.zeros((bands, len(freqs)))
    for i in range(bands):
        left, centre, right = edges[i : i + 3]
        rising = (freqs - left) / (centre - left)
        falling = (right - freqs) / (right - centre)
        bank[i] = np.clip(np.minimum(rising, falling), 0, None)
    return bank


_MEL = _mel_filterbank()
_DCT = np.cos(np.pi * np.arange(13)[:, None] * (2 * np.arange(24)[None, :] + 1) / 48)
