"""Settings of the local engines (faster-whisper, Piper): defaults that fit the machine, checks."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.providers.local.voices import VOICE_SOURCE, fetchable_name

# faster-whisper's names (faster_whisper.utils._MODELS), kept here so reading the config never
# imports the engine. Sizes are the int8/float16 CTranslate2 downloads, for the one log line.
WHISPER_SIZES_MB: Mapping[str, int] = {
    "tiny": 75,
    "tiny.en": 75,
    "base": 145,
    "base.en": 145,
    "small": 485,
    "small.en": 485,
    "medium": 1530,
    "medium.en": 1530,
    "large-v1": 3090,
    "large-v2": 3090,
    "large-v3": 3090,
    "large": 3090,
    "distil-large-v2": 1510,
    "distil-medium.en": 790,
    "distil-small.en": 335,
    "distil-large-v3": 1510,
    "distil-large-v3.5": 1510,
    "large-v3-turbo": 1620,
    "turbo": 1620,
}
DEVICES = ("cpu", "cuda", "auto")
COMPUTE_TYPES = (
    "default",
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
TASKS = ("transcribe", "translate")
STT_EXTRA = "local"
TTS_EXTRA = "local-tts"
# Files a CTranslate2 Whisper directory needs; without tokenizer.json faster-whisper would fetch
# one from the hub, so a directory lacking it is refused (a path must never touch the network).
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")


@dataclass(frozen=True, slots=True)
class WhisperSettings:
    """One ``type: local`` instance's speech-to-text settings (faster-whisper)."""

    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 1
    """Threads per transcription."""
    workers: int = 1
    """Transcriptions at once; more wait their turn (PENDING with a queue position)."""
    vad_filter: bool = True
    """Skip silence (Silero VAD, shipped with faster-whisper): faster, fewer hallucinations."""
    beam_size: int = 5
    batch_size: int = 8
    """Windows decoded at once by the batched path (long recordings)."""
    batch_min_seconds: float = 300.0
    """Recordings at least this long take the batched path (VAD cuts, windows decoded side by
    side, each batch primed with the last words before it: faster on long audio, and no window
    can loop on its own previous text); shorter ones the sequential path, as fast there and
    a little more accurate on clean speech (0: every recording batched)."""
    task: str = "transcribe"
    """``translate``: transcribe into English."""
    word_timestamps: bool = False
    download_dir: Path | None = None
    """Where named models are downloaded and cached (None: the Hugging Face default cache)."""
    offline: bool = False
    """Never download: a named model must already be in the cache."""
    keep_audio_hours: float = 24.0
    """A recording is kept this long after it was sent, so "Translate → English" can run
    Whisper's translate task on it (0: never kept, that button not offered)."""


@dataclass(frozen=True, slots=True)
class PiperSettings:
    """One ``type: local`` instance's text-to-speech settings (Piper)."""

    voices_dir: Path | None = None
    """Every ``NAME.onnx`` with a ``NAME.onnx.json`` beside it here is a voice called NAME."""
    workers: int = 1
    max_chars: int = 1000
    """Characters per synthesis part (long text is also cut into sentences by Piper)."""
    voice_source: str = VOICE_SOURCE
    """Where a missing default voice is fetched from (``<source>/en/en_US/joe/medium/...``)."""
    offline: bool = False
    """Never download: the voice must already be in voices_dir (or be given as a path)."""

    def can_fetch(self, voice: str) -> bool:
        """Whether a missing ``voice`` may be fetched: a Piper voice name, a voices_dir to put
        it in, and downloads allowed."""
        return self.voices_dir is not None and not self.offline and fetchable_name(voice)


def default_workers(cpus: int | None = None) -> tuple[int, int]:
    """(workers, cpu_threads) that fit the machine: one transcription per 4 cores, each with its
    share of the cores; on 2 cores one at a time with both threads (two at once only halves each,
    and leaves nothing for the event loop's own work)."""
    count = cpus or os.cpu_count() or 2
    workers = max(1, count // 4)
    return workers, max(1, count // workers)


def default_batch_size(threads: int) -> int:
    """Windows per batch for ``threads`` CPU threads: 8 from 1-2 threads (on 2 cores 4, 8 and
    16 took about the same time on 165 s of speech), up to 16 with more threads to keep busy; a
    larger batch costs memory (a 30 s window's features each) and coarser progress."""
    return max(8, min(16, 4 * threads))


def engine_missing(module: str, extra: str) -> str | None:
    """The problem when an engine's optional dependency is not installed, else None."""
    if importlib.util.find_spec(module) is not None:
        return None
    return f"needs `pip install voicebot[{extra}]` ({module} is not installed)"


def looks_like_path(value: str) -> bool:
    """Whether a model or voice is given as a path (not a Whisper size or a voice name): the
    operator pointed at something on this machine, so its absence is a configuration error."""
    shaped = value.startswith(("~", ".")) or value.endswith(".onnx")
    return shaped or "/" in value or os.sep in value


def whisper_model_problem(model: str) -> str | None:
    """Why ``model`` is neither a Whisper size name nor a usable CTranslate2 directory, or None."""
    if model in WHISPER_SIZES_MB:
        return None
    path = Path(model).expanduser()
    if not path.exists() and looks_like_path(model):
        return (
            f"model directory {model!r} does not exist (a CTranslate2 Whisper model directory "
            "holds model.bin, config.json and tokenizer.json; or name a size such as base)"
        )
    if not path.exists():
        sizes = ", ".join(("tiny", "base", "small", "medium", "large-v3", "large-v3-turbo"))
        return (
            f"{model!r} is neither a Whisper size ({sizes}, ...) nor an existing "
            "CTranslate2 model directory"
        )
    if not path.is_dir():
        return f"{model!r} is a file; give the CTranslate2 model directory that holds model.bin"
    absent = [f for f in _MODEL_FILES if not (path / f).is_file()]
    if absent:
        return f"{model!r} has no {', '.join(absent)} (not a CTranslate2 Whisper model directory)"
    return None


def read_whisper(raw: Mapping[str, Any], where: str) -> tuple[WhisperSettings, list[str]]:
    """Validate an instance section's speech-to-text keys (already type-checked by the config)."""
    problems: list[str] = []
    auto_workers, auto_threads = default_workers()
    device = str(raw.get("device") or "cpu")
    workers = int(raw.get("workers") or auto_workers)
    compute = raw.get("compute_type") or ("int8" if device == "cpu" else "default")
    threads = int(raw.get("cpu_threads") or max(1, auto_threads * auto_workers // workers))
    settings = WhisperSettings(
        device=device,
        compute_type=str(compute),
        cpu_threads=threads,
        workers=workers,
        vad_filter=bool(raw.get("vad_filter", True)),
        beam_size=int(raw.get("beam_size") or 5),
        batch_size=int(raw.get("batch_size") or default_batch_size(threads)),
        batch_min_seconds=float(raw.get("batch_min_seconds", 300.0)),
        task=str(raw.get("task") or "transcribe"),
        word_timestamps=bool(raw.get("word_timestamps", False)),
        download_dir=_path(raw.get("download_dir")),
        offline=bool(raw.get("offline", False)),
        keep_audio_hours=float(raw.get("keep_audio_hours", 24.0)),
    )
    for key in ("keep_audio_hours", "batch_min_seconds"):
        if getattr(settings, key) < 0:
            problems.append(f"{where}.{key}: must be 0 or more")
    for key, value, choices in (
        ("device", settings.device, DEVICES),
        ("compute_type", settings.compute_type, COMPUTE_TYPES),
        ("task", settings.task, TASKS),
    ):
        if value not in choices:
            problems.append(f"{where}.{key}: must be one of {', '.join(choices)}, got {value!r}")
    for key in ("cpu_threads", "workers", "beam_size", "batch_size"):
        if getattr(settings, key) < 1:
            problems.append(f"{where}.{key}: must be 1 or more")
    return settings, problems


def read_piper(raw: Mapping[str, Any], where: str) -> tuple[PiperSettings, list[str]]:
    """Validate an instance section's text-to-speech keys."""
    problems: list[str] = []
    settings = PiperSettings(
        voices_dir=_path(raw.get("voices_dir")),
        workers=int(raw.get("tts_workers") or 1),
        max_chars=int(raw.get("max_chars") or 1000),
        voice_source=str(raw.get("voice_source") or VOICE_SOURCE),
        offline=bool(raw.get("offline", False)),
    )
    if settings.workers < 1:
        problems.append(f"{where}.tts_workers: must be 1 or more")
    if settings.max_chars < 20:
        problems.append(f"{where}.max_chars: must be 20 or more")
    return settings, problems


def find_voices(voices_dir: Path | None) -> dict[str, Path]:
    """Voice name → ``.onnx`` path for every complete pair in ``voices_dir``."""
    if voices_dir is None or not voices_dir.is_dir():
        return {}
    found = {}
    for onnx in sorted(voices_dir.glob("*.onnx")):
        if onnx.with_name(onnx.name + ".json").is_file():
            found[onnx.stem] = onnx
    return found


def voice_problem(voice: str, voices_dir: Path | None) -> str | None:
    """Why ``voice`` is neither a voice in ``voices_dir`` nor a usable ``.onnx`` path, or None."""
    if voice in find_voices(voices_dir):
        return None
    path = Path(voice).expanduser()
    if looks_like_path(voice):
        if not path.is_file():
            return f"voice file {voice!r} does not exist"
        if not path.with_name(path.name + ".json").is_file():
            return f"voice {voice!r} has no {path.name}.json beside it (Piper needs both)"
        return None
    if voices_dir is None:
        return f"unknown voice {voice!r} (no voices_dir configured)"
    if not voices_dir.is_dir():
        return f"unknown voice {voice!r}: voices_dir {str(voices_dir)!r} does not exist"
    known = ", ".join(find_voices(voices_dir)) or "none found"
    return f"unknown voice {voice!r} in {voices_dir}; voices: {known}"


def _path(value: Any) -> Path | None:
    return Path(str(value)).expanduser() if value else None
