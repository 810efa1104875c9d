"""``voicebot check-config``: token shapes, model names (with "did you mean"), what is missing."""

from __future__ import annotations

import difflib
import importlib
import re
import sys
from collections.abc import Iterable

from bot.config.load import Config
from bot.providers.registry import describe

# Telegram: "<bot id>:<35-character secret>" (BotFather's format); Discord: three base64url
# parts joined by dots (user id, timestamp, HMAC). Shapes only: a real check needs the network.
_TELEGRAM_TOKEN = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
_DISCORD_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$")


def model_problem(key: str, model: str, known: Iterable[str]) -> str | None:
    """A sentence when ``model`` is not one of ``known`` but looks like one (wrong case, typo)."""
    names = list(known)
    if model in names:
        return None
    by_lower = {n.lower(): n for n in names}
    close = by_lower.get(model.lower())
    if close is None:
        matches = difflib.get_close_matches(model.lower(), list(by_lower), n=1, cutoff=0.75)
        close = by_lower[matches[0]] if matches else None
    if close is None:
        return None  # not ours to refuse: the provider may offer models we do not list
    return f"{key}: unknown model {model!r}; did you mean {close!r}?"


def token_problems(config: Config) -> list[str]:
    """A sentence per configured token that cannot be a real one."""
    problems = []
    tg, dc = config.telegram.token, config.discord.token
    if tg and not _TELEGRAM_TOKEN.match(tg):
        problems.append(
            "telegram.token: does not look like a bot token (expected 123456789:ABC…, as "
            "@BotFather gives it); check TELEGRAM_BOT_TOKEN"
        )
    if dc and not _DISCORD_TOKEN.match(dc):
        problems.append(
            "discord.token: does not look like a bot token (three dot-separated parts, from the "
            "developer portal's Bot page); check DISCORD_BOT_TOKEN"
        )
    return problems


def _known_models(config: Config, instance: str, listing: str) -> tuple[str, ...]:
    """The model names a provider type's module lists (``STT_MODELS``/``TTS_MODELS``), if any.

    By convention each type lives in ``bot/providers/<type>.py``; a type that lists no models
    (a generic OpenAI-compatible server can serve anything) is not checked.
    """
    pc = config.providers.get(instance)
    if pc is None:
        return ()
    try:
        module = importlib.import_module(f"bot.providers.{pc.type}")
    except ImportError:  # an optional extra that is not installed: nothing to compare against
        return ()
    return tuple(getattr(module, listing, ()))


def config_problems(config: Config) -> list[str]:
    """Everything ``check-config`` refuses beyond what loading the file already checked."""
    problems = token_problems(config)
    for key, instance, model, listing in (
        ("stt.model", config.stt.provider, config.stt.model, "STT_MODELS"),
        ("tts.model", config.tts.provider, config.tts.model, "TTS_MODELS"),
    ):
        problems.append(model_problem(key, model, _known_models(config, instance, listing)) or "")
    if not (config.telegram.token or config.discord.token):
        problems.append(
            "no chat platform: set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN to use "
            "'voicebot run' (transcribe/speak work without)"
        )
    return [p for p in problems if p]


def check_config(config: Config) -> int:
    """Print the configuration summary; exit 2 with every problem when something is wrong."""
    problems = config_problems(config)
    platform_only = all(p.startswith("no chat platform") for p in problems)
    if problems and not platform_only:
        print("voicebot: invalid configuration:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print("configuration OK")
    print(f"  database: {config.storage.path}")
    print("  providers:")
    routes = {"stt": config.stt.provider, "tts": config.tts.provider}
    for line in describe(config.providers, routes):
        print(f"    {line}")
    print(f"  speech-to-text: {config.stt.provider} / {config.stt.model}")
    print(f"  text-to-speech: {config.tts.provider} / {config.tts.model} ({config.tts.voice})")
    for note in (config.stt.note, config.tts.note):
        if note:
            print(f"  note: {note}")
    print(f"  telegram: {'on' if config.telegram.token else 'off (set TELEGRAM_BOT_TOKEN)'}")
    print(f"  discord: {'on' if config.discord.token else 'off (set DISCORD_BOT_TOKEN)'}")
    for problem in problems:
        print(f"  note: {problem}")
    return 0
