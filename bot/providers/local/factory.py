"""Builds a ``type: local`` instance's engines from its config section (no engine is imported)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.errors import ConfigError
from bot.providers.local.piper import PiperTextToSpeech
from bot.providers.local.settings import read_piper, read_whisper
from bot.providers.local.whisper import WhisperSpeechToText


def build_engines(
    name: str, raw: Mapping[str, Any]
) -> tuple[WhisperSpeechToText, PiperTextToSpeech]:
    """Both role objects of one local instance; the engines load on first use.

    Raises:
        ConfigError: a setting is out of range or names a directory that is not there.
    """
    where = f"providers.{name}"
    whisper, problems = read_whisper(raw, where)
    piper, more = read_piper(raw, where)
    if problems or more:
        raise ConfigError([*problems, *more])
    return WhisperSpeechToText(name, whisper), PiperTextToSpeech(name, piper)
