"""Long recordings: cut audio into parts at silences (an energy detector on PCM) and encode them."""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from av.audio.frame import AudioFrame

from bot.audio import codec as audio

_LOGGER = logging.getLogger(__name__)

RATE = 16000
"""Parts are mono Opus at 16 kHz: all speech recognition needs (see ``codec._UPLOAD_RATE``)."""
PART_BIT_RATE = 32000
"""Plenty for speech at 16 kHz; a 10-minute part is about 2.5 MB."""
_FAST_OPUS = {"compression_level": "0"}
"""The encoder's cheapest mode: measured 2.9x faster than the default (10) on speech, for about
6 % more bytes at a given quality, which the higher bitrate pays for (a 2-hour recording is
re-encoded in well under a minute of one core instead of about two)."""
MAX_PART_SECONDS = 600.0
"""Longest part even where the provider takes more: ten parts of a 100-minute lecture run side
by side, progress moves in steps a user can see, and a lost part costs ten minutes, not all."""
MIN_PAUSE_SECONDS = 0.3
"""A pause at least this long is a gap between words (or sentences), never inside one."""
_WINDOW = 480  # 30 ms at 16 kHz: the detector's resolution
_STRIDE = 3  # every 3rd sample is plenty to measure a window's energy, and 3x cheaper
_QUIET_FLOOR = 60 * (_WINDOW // _STRIDE)  # mean |sample| of 60 (-55 dBFS): quiet whatever else
_FRAME = 960  # samples per frame handed to the encoder (60 ms, the Opus frame used)


@dataclass(frozen=True, slots=True)
class AudioPart:
    """One part of a recording: where it starts (seconds), how long it is, its OGG/Opus bytes."""

    start: float
    duration: float
    data: bytes


def part_seconds(max_duration: float | None, max_bytes: int) -> float:
    """The longest part a model accepts: its duration limit and its upload limit at
    :data:`PART_BIT_RATE` (5 % spare for the container), at most :data:`MAX_PART_SECONDS`."""
    fits = audio.seconds_fitting(max_bytes, PART_BIT_RATE) * 0.95
    return max(30.0, min(MAX_PART_SECONDS, fits, max_duration or math.inf))


def needs_split(info: audio.AudioInfo, max_duration: float | None, max_bytes: int) -> bool:
    """Whether a recording is longer than the model takes, or larger than its upload limit even
    when re-encoded at a bitrate good for recognition (the lowest ones lose words)."""
    if max_duration is not None and info.duration > max_duration:
        return True
    return audio.estimate_bytes(info.duration, 16000) > max_bytes


def split_at_silences(data: bytes, duration: float, max_seconds: float) -> list[AudioPart]:
    """Cut a recording into parts of at most ``max_seconds``, of about equal length, each cut in
    the middle of the longest pause near its target point (the quietest moment when there is
    no pause at all), and encode each part as OGG/Opus.

    Raises:
        AudioError: the audio cannot be decoded.
    """
    count = max(1, math.ceil(duration / (max_seconds * 0.9)))
    total = int(duration * RATE)
    limit = int(max_seconds * RATE)
    reach = int(min(90.0, max(5.0, 0.15 * duration / count)) * RATE)
    parts: list[AudioPart] = []
    pcm = bytearray()
    start = 0  # sample offset of ``pcm`` in the recording
    target = total // count
    for frame in audio.pcm_frames(data, RATE):
        pcm += bytes(frame.planes[0])[: frame.samples * 2]
        # Cut once the buffer holds the whole search window past the target point (or the
        # hard limit), so the pause chosen is the best one near the target.
        while len(parts) < count - 1 and len(pcm) // 2 >= min(limit, target + reach):
            cut = find_cut(pcm, max(1, target - reach), min(limit, target + reach), target)
            parts.append(_encode_part(bytes(pcm[: cut * 2]), start))
            del pcm[: cut * 2]
            start += cut
            # What is left is shared evenly by the parts still to cut.
            target = max(RATE, (total - start) // (count - len(parts)))
        while len(pcm) // 2 > limit:  # longer than probed: cut as it comes
            cut = find_cut(pcm, max(1, limit - reach), limit, limit)
            parts.append(_encode_part(bytes(pcm[: cut * 2]), start))
            del pcm[: cut * 2]
            start += cut
    if len(pcm) // 2 >= RATE // 10 or not parts:
        parts.append(_encode_part(bytes(pcm), start))
    _LOGGER.info("split %.0f s of audio into %d parts", duration, len(parts))
    return parts


def find_cut(pcm: bytes | bytearray, lo: int, hi: int, target: int) -> int:
    """The sample at which to cut ``pcm`` (mono s16) between samples ``lo`` and ``hi``: the
    middle of the longest quiet run (ties: nearest ``target``), else the quietest window."""
    samples = array("h", bytes(pcm[lo * 2 : hi * 2]))
    energies = [
        sum(map(abs, samples[i : i + _WINDOW : _STRIDE]))
        for i in range(0, len(samples) - _WINDOW + 1, _WINDOW)
    ]
    if not energies:
        return hi
    ranked = sorted(energies)
    threshold = min(max(_QUIET_FLOOR, 2 * ranked[len(ranked) // 10]), ranked[len(ranked) // 2] // 4)
    best: tuple[float, int] | None = None
    for first, last in _quiet_runs(energies, max(threshold, _QUIET_FLOOR // 4)):
        middle = lo + (first + last + 1) * _WINDOW // 2
        length = (last - first + 1) * _WINDOW / RATE
        # Longer pauses win; among pauses over the minimum, the one nearer the target point.
        score = min(length, 2.0) * 10 - abs(middle - target) / RATE / 60
        if length >= MIN_PAUSE_SECONDS and (best is None or score > best[0]):
            best = (score, middle)
    if best is not None:
        return best[1]
    quietest = min(range(len(energies)), key=energies.__getitem__)
    return lo + quietest * _WINDOW + _WINDOW // 2


def _quiet_runs(energies: list[int], threshold: int) -> Iterator[tuple[int, int]]:
    """(first, last) window indexes of each run of windows at or under ``threshold``."""
    first = None
    for i, energy in enumerate(energies):
        if energy <= threshold:
            first = i if first is None else first
        elif first is not None:
            yield first, i - 1
            first = None
    if first is not None:
        yield first, len(energies) - 1


def _encode_part(pcm: bytes, start: int) -> AudioPart:
    ogg = audio.encode_upload(_frames(pcm), rate=RATE, bit_rate=PART_BIT_RATE, extra=_FAST_OPUS)
    return AudioPart(start=start / RATE, duration=len(pcm) / 2 / RATE, data=ogg)


def _frames(pcm: bytes) -> Iterator[AudioFrame]:
    step = _FRAME * 2
    for i in range(0, len(pcm), step):
        piece = pcm[i : i + step]
        frame = AudioFrame(format="s16", layout="mono", samples=len(piece) // 2)
        frame.planes[0].update(piece)
        frame.sample_rate = RATE
        yield frame
