"""The job mix both contenders get: inputs, arrival times, each job's provider processing time."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.fakes import API_KEY_CANTO, API_KEY_NANO, run_key, tone
from bot.config.load import Config, parse_config

PLATFORM = "bench"
NANO_STT_MODEL = "Elevenlabs-STT"  # NanoGPT's asynchronous (runId + status) STT model
NANO_TTS_MODEL = "Elevenlabs-Turbo-V2.5"  # NanoGPT's asynchronous TTS model
TTS_VOICE = "Rachel"


@dataclass(frozen=True, slots=True)
class SpeedModel:
    """Provider processing time: proportional to the input, lognormal noise, sometimes a queue."""

    stt_base: float = 1.0
    stt_per_second: float = 0.25
    tts_base: float = 1.0
    tts_per_char: float = 0.015
    noise_sigma: float = 0.15
    queue_chance: float = 0.1
    queue_seconds: tuple[float, float] = (3.0, 10.0)

    def seconds(self, rng: random.Random, kind: str, size: float) -> tuple[float, float]:
        """(seconds queued, seconds processing) for one job of ``size`` audio seconds (STT) or
        characters (TTS)."""
        if kind == "tts":
            base = self.tts_base + self.tts_per_char * size
        else:
            base = self.stt_base + self.stt_per_second * size
        seconds = base * rng.lognormvariate(0.0, self.noise_sigma)
        queued = rng.uniform(*self.queue_seconds) if rng.random() < self.queue_chance else 0.0
        return queued, seconds


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job: what is sent, to whom, when (seconds after the phase starts), how long it takes."""

    index: int
    kind: str  # "stt" or "tts"
    provider: str  # "nanogpt" or "cantonese"
    size: float  # audio seconds or characters
    arrival: float
    processing: float  # total, queue included
    audio: bytes = b""
    text: str = ""
    queued: float = 0.0

    @property
    def key(self) -> str:
        """The fakes' lookup key for this job's processing time."""
        if self.kind == "tts":
            return run_key("tts", {"textLength": len(self.text)})
        return run_key("stt", {"fileSize": len(self.audio)})


def make_mix(
    count: int,
    *,
    seed: int,
    spread: float,
    durations: tuple[float, float],
    chars: tuple[int, int],
    model: SpeedModel,
    used: set[str] | None = None,
    cantonese: bool = True,
) -> list[JobSpec]:
    """``count`` jobs (half NanoGPT STT, a quarter cantonese.ai STT, a quarter NanoGPT TTS),
    arriving uniformly over ``spread`` seconds; every job's lookup key is unique."""
    rng = random.Random(seed)
    used = used if used is not None else set()
    specs: list[JobSpec] = []
    for index in range(count):
        slot = index % 4
        kind, provider = ("tts", "nanogpt") if slot == 3 else ("stt", "nanogpt")
        if slot == 2 and cantonese:
            provider = "cantonese"
        arrival = rng.uniform(0.0, spread) if spread > 0 else 0.0
        draw = partial(_draw, rng, index, kind, provider, arrival, durations, chars)
        spec = _unique(draw, used)
        queued, working = model.seconds(rng, kind, spec.size)
        specs.append(
            JobSpec(
                index,
                kind,
                provider,
                spec.size,
                arrival,
                queued + working,
                spec.audio,
                spec.text,
                queued,
            )
        )
    return sorted(specs, key=lambda s: s.arrival)


def _unique(draw: Callable[[int], JobSpec], used: set[str]) -> JobSpec:
    """``draw(0)``, or ``draw(bump)`` for the first bump whose lookup key is not in ``used``."""
    spec = draw(0)
    for bump in range(1, 200):  # bounded: nudge the size until the lookup key is unique
        if spec.key not in used:
            break
        spec = draw(bump)
    used.add(spec.key)
    return spec


def _draw(
    rng: random.Random,
    index: int,
    kind: str,
    provider: str,
    arrival: float,
    durations: tuple[float, float],
    chars: tuple[int, int],
    bump: int = 0,
) -> JobSpec:
    if kind == "tts":
        length = rng.randint(*chars) + bump
        return JobSpec(index, kind, provider, length, arrival, 0.0, text=_text(length))
    seconds = round(rng.uniform(*durations) + 0.1 * bump, 1)
    return JobSpec(index, kind, provider, seconds, arrival, 0.0, audio=tone(seconds))


_WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "voice")


def _text(length: int) -> str:
    words = _WORDS
    out: list[str] = []
    total = 0
    i = 0
    while total < length:
        out.append(words[i % len(words)])
        total += len(out[-1]) + 1
        i += 1
    return " ".join(out)[:length].rstrip() + "."


def fake_table(specs: list[JobSpec]) -> dict[str, tuple[float, float]]:
    """The table the fakes look each job's (queue, processing) seconds up in."""
    return {s.key: (s.queued, s.processing - s.queued) for s in specs}


def bench_config(db: Path, nano_url: str, canto_url: str, url: str | None = None) -> Config:
    """A config with both providers on the fakes and every jobs knob left at its default (the
    store: SQLite at ``db``, or the PostgreSQL database at ``url``)."""
    data: dict[str, Any] = {
        "storage": {"url": url} if url else {"path": str(db)},
        "providers": {
            "nanogpt": {"api_key": API_KEY_NANO, "base_url": nano_url, "timeout": 30},
            "cantonese": {"api_key": API_KEY_CANTO, "base_url": canto_url, "timeout": 30},
        },
        "stt": {"provider": "nanogpt", "model": NANO_STT_MODEL},
        "tts": {"provider": "nanogpt", "model": NANO_TTS_MODEL, "voice": TTS_VOICE},
        "logging": {"level": "WARNING"},
    }
    return parse_config(data, env={})
