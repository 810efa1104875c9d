"""Where a local engine's model or voice is looked for, whether it is there, and fetching it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.providers.local.settings import (
    STT_EXTRA,
    WHISPER_SIZES_MB,
    PiperSettings,
    WhisperSettings,
    engine_missing,
    find_voices,
    looks_like_path,
    read_piper,
    read_whisper,
    voice_problem,
    whisper_model_problem,
)

_LOGGER = logging.getLogger(__name__)

# What faster-whisper itself fetches of a model repository (faster_whisper.utils.download_model).
_WHISPER_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json"]
WHISPER_BY_HAND = (
    "a CTranslate2 Whisper model directory (model.bin, config.json, tokenizer.json) on this "
    "machine, e.g. copied from one that has it,"
)
VOICE_BY_HAND = "NAME.onnx with its NAME.onnx.json beside it"


class HubUnreachable(Exception):
    """The model hub could not be reached or refused the download; ``args[0]`` says why."""


@dataclass(frozen=True, slots=True)
class Presence:
    """One model or voice a route needs: what it is, where it is looked for, whether it is there."""

    what: str
    """``Whisper model base`` or ``Piper voice en_US-joe-medium``."""
    name: str
    """The model or voice as configured."""
    where: Path
    """The directory (or file) it is looked for in."""
    present: bool
    fetchable: bool
    """``voicebot models fetch`` can download it (a name, downloads allowed)."""
    setting: str
    """The instance's setting for the directory it is looked for in."""
    size_mb: int | None = None
    source: str = ""
    """Where a Piper voice is fetched from (the instance's voice_source)."""


def route_presence(
    role: str, model: str, voice: str | None, settings: Mapping[str, Any]
) -> Presence:
    """The registry's hook: the presence of a route's model (``stt``) or voice (``tts``)."""
    if role == "stt":
        return whisper_presence(model, read_whisper(settings, "")[0])
    return voice_presence(voice or "", read_piper(settings, "")[0])


def default_cache() -> Path:
    """The Hugging Face cache a named Whisper model goes to when no download_dir is set."""
    try:
        from huggingface_hub import constants
    except ImportError:  # without the local extra: the documented default
        return Path("~/.cache/huggingface/hub").expanduser()
    return Path(constants.HF_HUB_CACHE)


def whisper_presence(model: str, settings: WhisperSettings) -> Presence:
    """Where faster-whisper finds ``model`` (a size in the cache, or a directory) and whether it
    is there; never touches the network."""
    what = f"Whisper model {model}"
    if looks_like_path(model) or model not in WHISPER_SIZES_MB:
        path = Path(model).expanduser()
        present = whisper_model_problem(model) is None
        return Presence(what, model, path, present, False, "download_dir")
    cache = settings.download_dir or default_cache()
    return Presence(
        what,
        model,
        cache,
        _cached(model, cache),
        not settings.offline and engine_missing("faster_whisper", STT_EXTRA) is None,
        "download_dir",
        WHISPER_SIZES_MB[model],
    )


def voice_presence(voice: str, settings: PiperSettings) -> Presence:
    """Where Piper finds ``voice`` (voices_dir, or the file given) and whether it is there."""
    what = f"Piper voice {voice}"
    if looks_like_path(voice):
        path = Path(voice).expanduser()
        present = voice_problem(voice, None) is None
        return Presence(what, voice, path, present, False, "voices_dir")
    where = settings.voices_dir or Path("voices_dir (not set)")
    present = voice in find_voices(settings.voices_dir)
    fetchable = settings.can_fetch(voice)
    return Presence(
        what, voice, where, present, fetchable, "voices_dir", None, settings.voice_source
    )


def _cached(size: str, cache: Path) -> bool:
    try:
        from faster_whisper.utils import download_model
    except ImportError:
        return False
    try:
        download_model(size, local_files_only=True, cache_dir=str(cache))
    except Exception:  # huggingface_hub's "not in the cache" errors vary by version
        return False
    return True


def fetch_whisper(size: str, cache: Path, *, progress: bool) -> Path:
    """Download Whisper model ``size`` into ``cache`` (a progress bar on stderr if asked).

    Raises:
        HubUnreachable: the hub could not be reached, refused, or downloads are disabled
            (``HF_HUB_OFFLINE``); the reason is one line.
    """
    import huggingface_hub
    from faster_whisper.utils import _MODELS, disabled_tqdm

    bar: Callable[..., object] | None = None if progress else disabled_tqdm
    try:
        found = huggingface_hub.snapshot_download(
            _MODELS[size],
            cache_dir=str(cache),
            allow_patterns=[*_WHISPER_FILES, "vocabulary.*"],
            tqdm_class=bar,  # type: ignore[arg-type]
        )
    except Exception as exc:  # connection, HTTP and offline-mode errors differ by version
        raise HubUnreachable(first_line(exc)) from exc
    return Path(found)


def first_line(exc: BaseException) -> str:
    """The gist of a library's (often multi-line) error: its first line that says something."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip().removeprefix("Got: ")
    return type(exc).__name__
