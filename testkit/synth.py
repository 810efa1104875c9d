"""Synthesized speech-like recordings for the long-audio tests: tone "words" and known pauses."""

from __future__ import annotations

import hashlib
import io
import math
import random
import re
from array import array
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
from av.audio.frame import AudioFrame

RATE = 16000
_FREQS = (150, 190, 230, 270, 320, 380)
TWO_HOURS = 2 * 3600


@dataclass(frozen=True, slots=True)
class Recording:
    """OGG/Opus bytes and where its words are (seconds), in order."""

    data: bytes
    duration: float
    words: tuple[tuple[float, float], ...]


def speechlike(seconds: float, seed: int = 1, bit_rate: int = 32000) -> Recording:
    """``seconds`` of "sentences": 3-12 tone-burst words (0.15-0.5 s, 0.08-0.15 s apart: too
    short a gap to cut at) separated by 0.5-1.5 s of faint noise (a quiet room), as Opus at
    ``bit_rate`` (a long voice note is sent at a low one: Telegram's bots download 20 MB)."""
    rng = random.Random(seed)
    pcm = array("h")
    words: list[tuple[float, float]] = []
    while len(pcm) < seconds * RATE:
        for _ in range(rng.randint(3, 12)):
            start = len(pcm) / RATE
            pcm += _tone(rng.randint(15, 50), rng.choice(_FREQS))
            words.append((start, len(pcm) / RATE))
            pcm += _noise(rng.randint(8, 15), rng.randrange(50))
        pcm += _noise(rng.randint(50, 150), rng.randrange(50))
    del pcm[int(seconds * RATE) :]
    kept = tuple((a, min(b, seconds)) for a, b in words if a < seconds - 0.1)
    return Recording(_encode(pcm, bit_rate), seconds, kept)


def two_hours(folder: Path) -> bytes:
    """Two hours of speech-like audio at 10 kb/s (7 MB: under Telegram's 20 MB bot download and
    Discord's 10 MB upload), made once into ``folder`` and read from there after (its name
    carries this module's hash: a change here makes it anew)."""
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    path = folder / f"two-hours-{digest}.ogg"
    if not path.exists():
        partial = path.with_suffix(f".{random.randrange(1 << 30)}.part")
        partial.write_bytes(speechlike(TWO_HOURS, seed=11, bit_rate=10000).data)
        partial.replace(path)  # whole or absent, for a run beside this one
    return path.read_bytes()


def srt_end(srt: bytes) -> int:
    """Where the last cue of subtitles ends, in whole seconds."""
    ends = re.findall(r"--> (\d\d):(\d\d):(\d\d)", srt.decode())
    h, m, s = map(int, ends[-1])
    return 3600 * h + 60 * m + s


@cache
def _tone(centis: int, freq: int) -> array[int]:
    """``centis`` hundredths of a second of a sine with 25 ms fades (a "word")."""
    n = centis * RATE // 100
    step = 2 * math.pi * freq / RATE
    return array(
        "h", (int(9000 * min(1.0, i / 400, (n - i) / 400) * math.sin(i * step)) for i in range(n))
    )


@cache
def _noise_bank() -> array[int]:
    rng = random.Random(7)
    return array("h", (rng.randint(-40, 40) for _ in range(2 * RATE)))


def _noise(centis: int, offset: int) -> array[int]:
    start = offset * RATE // 100
    return _noise_bank()[start : start + centis * RATE // 100]


def _encode(pcm: array[int], bit_rate: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=RATE, options={"compression_level": "0"})
        stream.layout = "mono"
        stream.bit_rate = bit_rate
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
