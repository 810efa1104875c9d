"""``voicebot check-config``: token shapes, model names (with "did you mean"), what is missing."""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Iterable

from adapters import enabled, platforms
from adapters.cli.models import startup_notes
from bot.config.load import Config
from bot.providers.registry import describe


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
    for plugin in platforms():
        settings = config.platforms.get(plugin.name)
        problem = plugin.token_problem(settings.token if settings else None)
        if problem is not None:
            problems.append(problem)
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
    if not enabled(config):
        tokens = " and/or ".join(p.token_env for p in platforms())
        problems.append(
            f"no chat platform: set {tokens} to use 'voicebot run' (transcribe/speak work without)"
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
    on = enabled(config)
    for plugin in platforms():
        print(f"  {plugin.name}: {'on' if plugin in on else f'off (set {plugin.token_env})'}")
    for problem in problems:
        print(f"  note: {problem}")
    for note in startup_notes(config):
        print(f"  note: {note}")
    return 0
