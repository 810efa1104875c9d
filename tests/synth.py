"""Synthesized speech-like recordings for the long-audio tests: tone "words" and known pauses."""

from __future__ import annotations

import io
import math
import random
from array import array
from dataclasses import dataclass
from fractions import Fraction

import av
from av.audio.frame import AudioFrame

RATE = 16000


@dataclass(frozen=True, slots=True)
class Recording:
    """OGG/Opus bytes and where its words are (seconds), in order."""

    data: bytes
    duration: float
    words: tuple[tuple[float, float], ...]


def speechlike(seconds: float, seed: int = 1) -> Recording:
    """``seconds`` of "sentences": 3-12 tone-burst words (0.15-0.5 s, 0.06-0.15 s apart, too
    short for a pause) separated by 0.5-1.5 s of near silence (faint noise, as in a room)."""
    rng = random.Random(seed)
    pcm = array("h")
    words: list[tuple[float, float]] = []
    while len(pcm) < seconds * RATE:
        for _ in range(rng.randint(3, 12)):
            start = len(pcm) / RATE
            _tone(pcm, rng.uniform(0.15, 0.5), rng.uniform(150, 400), rng)
            words.append((start, len(pcm) / RATE))
            _noise(pcm, rng.uniform(0.06, 0.15), rng)
        _noise(pcm, rng.uniform(0.5, 1.5), rng)
    del pcm[int(seconds * RATE) :]
    words = [(a, min(b, seconds)) for a, b in words if a < seconds]
    return Recording(_encode(pcm), seconds, tuple(words))


def _tone(pcm: array[int], seconds: float, freq: float, rng: random.Random) -> None:
    n = int(seconds * RATE)
    step = 2 * math.pi * freq / RATE
    for i in range(n):
        envelope = min(1.0, i / 400, (n - i) / 400)
        pcm.append(int(9000 * envelope * math.sin(i * step)) + rng.randint(-40, 40))


def _noise(pcm: array[int], seconds: float, rng: random.Random) -> None:
    pcm.extend(rng.randint(-40, 40) for _ in range(int(seconds * RATE)))


def _encode(pcm: array[int]) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=RATE)
        stream.layout = "mono"
        stream.bit_rate = 24000
        raw = pcm.tobytes()
        step = 960 * 2
        for i in range(0, len(raw), step):
            piece = raw[i : i + step]
            frame = AudioFrame(format="s16", layout="mono", samples=len(piece) // 2)
            frame.planes[0].update(piece)
            frame.sample_rate = RATE
            frame.pts = i // 2
            frame.time_base = Fraction(1, RATE)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()
