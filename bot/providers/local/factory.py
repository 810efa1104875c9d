"""Builds a ``type: local`` instance's engines from its config section (no engine is imported)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.model.errors import ConfigError
from bot.providers.local.piper import PiperTextToSpeech
from bot.providers.local.settings import (
    looks_like_path,
    read_piper,
    read_whisper,
    voice_problem,
    whisper_model_problem,
)
from bot.providers.local.voices import fetchable_name
from bot.providers.local.whisper import WhisperSpeechToText
from bot.providers.registry import STT, BuildContext, Built, ProviderConfig


def build_engines(
    name: str,
    raw: Mapping[str, Any],
    session: aiohttp.ClientSession | None = None,
    fetch: str | None = None,
) -> tuple[WhisperSpeechToText, PiperTextToSpeech]:
    """Both role objects of one local instance; the engines load on first use. ``fetch`` is
    the voice Piper downloads over ``session`` when it is missing (the route's default).

    Raises:
        ConfigError: a setting is out of range or names a directory that is not there.
    """
    where = f"providers.{name}"
    whisper, problems = read_whisper(raw, where)
    piper, more = read_piper(raw, where)
    if problems or more:
        raise ConfigError([*problems, *more])
    tts = PiperTextToSpeech(name, piper, session=session, fetch=fetch)
    return WhisperSpeechToText(name, whisper), tts


def build(config: ProviderConfig, context: BuildContext) -> Built:
    """The registry's factory: both roles (each engine is imported on first use, not here)."""
    fetch = context.voices.get(config.name)
    stt, tts = build_engines(config.name, config.settings, context.http.session, fetch)
    return Built(stt=stt, tts=tts)


def route_problems(
    role: str, model: str, voice: str | None, settings: Mapping[str, Any]
) -> list[str]:
    """Problems of a route using a local instance, found when the config is read: a model
    directory or a voice that is not there (the instance's own settings are checked when it is
    built, at start)."""
    if role == STT:
        problem = None if looks_like_path(model) else whisper_model_problem(model)
        return [] if problem is None else [f"stt.model: {problem}"]
    if looks_like_path(voice or ""):
        return []  # a path: path_problems, an error even on a fallback route
    piper, _ = read_piper(settings, "")
    problem = voice_problem(voice or "", piper.voices_dir)
    if problem is None or piper.can_fetch(voice or ""):
        return []  # a missing voice named like Piper's is fetched on first use
    if piper.offline and piper.voices_dir is not None and fetchable_name(voice or ""):
        problem += "; offline: true, so it is not downloaded"
    return [f"tts.voice: {problem}"]


def path_problems(role: str, model: str, voice: str | None) -> list[str]:
    """What is wrong with a model directory or voice file given as a path (one that is not
    there, or not a model): unlike a size or a voice name, nothing can fetch it, so it is a
    configuration error even on a fallback route."""
    value = model if role == STT else voice or ""
    if not looks_like_path(value):
        return []
    problem = whisper_model_problem(value) if role == STT else voice_problem(value, None)
    return [] if problem is None else [problem]
