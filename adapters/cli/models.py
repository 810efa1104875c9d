"""``voicebot models [fetch]``: the local models and voices the config needs, where each is looked
for, whether it is there; fetching what is missing; the start-up line when one is not there."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from bot.config.load import Config
from bot.model.errors import BotError
from bot.providers.local.presence import (
    VOICE_BY_HAND,
    WHISPER_BY_HAND,
    HubUnreachable,
    Presence,
    fetch_whisper,
)
from bot.providers.local.settings import looks_like_path, voice_problem
from bot.providers.local.voices import VoiceFetchError, fetch_voice
from bot.providers.registry import ROLE_NAMES, STT, TTS, TYPES

_LOGGER = logging.getLogger(__name__)
_TOLD = re.compile(r";? (the bot's|the) operator has been told")


@dataclass(frozen=True, slots=True)
class Need:
    """A model or voice a route of the config needs from an engine on this machine."""

    role: str
    """``speech-to-text`` or ``text-to-speech``."""
    instance: str
    key: str
    """The config key naming it (``stt.fallback.model``, ``tts.voice``, ...)."""
    presence: Presence

    @property
    def dir_key(self) -> str:
        """The instance's key for the directory it is looked for in."""
        return f"providers.{self.instance}.{self.presence.setting}"


def needs(config: Config) -> list[Need]:
    """What the configured routes need on this machine (none when they are hosted)."""
    found = []
    for role, route, note, voice in (
        (STT, config.stt.provider, config.stt.note, None),
        (TTS, config.tts.provider, config.tts.note, config.tts.voice),
    ):
        pc = config.providers.get(route)
        spec = TYPES.get(pc.type) if pc is not None else None
        if pc is None or spec is None or spec.missing_role_extra(role) is not None:
            continue  # an engine not installed: the config's own note says which extra
        model = config.stt.model if role == STT else config.tts.model
        presence = spec.model_presence(role, model, voice, pc.settings)
        if presence is not None:
            field_name = "model" if role == STT else "voice"
            key = f"{role}.fallback.{field_name}" if note else f"{role}.{field_name}"
            found.append(Need(ROLE_NAMES[role], pc.name, key, presence))
    return found


def describe(need: Need) -> str:
    """One line: what, whether it is there, where it is looked for, which key names it."""
    p = need.presence
    if p.present:
        where = "" if looks_like_path(p.name) else f" in {p.where}"
        return f"{need.role}: {p.what}: present{where} ({need.key})"
    if looks_like_path(p.name):
        return f"{need.role}: {p.what}: missing at {p.where} ({need.key})"
    size = f", about {p.size_mb} MB" if p.size_mb else ""
    then = "'voicebot models fetch' downloads it" if p.fetchable else by_hand(need)
    return f"{need.role}: {p.what}: missing from {p.where} ({need.dir_key}{size}); {then}"


def by_hand(need: Need) -> str:
    """How to place it without the hub, and which key to set."""
    if need.role == ROLE_NAMES[STT]:
        return f"place {WHISPER_BY_HAND} and set {need.key} to its path"
    name = need.presence.name
    return (
        f"place {VOICE_BY_HAND.replace('NAME', name)} in {need.presence.where} "
        f"({need.dir_key}), or set {need.key} to the path of a .onnx file"
    )


def startup_notes(config: Config) -> list[str]:
    """One line per local model or voice the config needs that is not on this machine."""
    return [describe(n) for n in needs(config) if not n.presence.present]


MODELS_HELP = "the local models and voices the config needs: where, whether present"


def models_arguments(parser: argparse.ArgumentParser) -> None:
    """``voicebot models [list|fetch] [--no-progress]``."""
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "fetch"),
        default="list",
        help="list (default), or fetch what is missing",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def models_command(config: Config, action: str, *, progress: bool) -> int:
    """``voicebot models`` (``list``, the default) or ``voicebot models fetch``."""
    if action == "fetch":
        return fetch_models(config, progress=progress and sys.stderr.isatty())
    return list_models(config)


def list_models(config: Config, out: TextIO = sys.stdout) -> int:
    """``voicebot models``: a line per model or voice the config needs."""
    found = needs(config)
    if not found:
        print("no local model needed: the configured routes use hosted providers", file=out)
    for need in found:
        print(describe(need), file=out)
    return 0


def fetch_models(config: Config, *, progress: bool) -> int:
    """``voicebot models fetch``: download what is missing; 1 when something could not be."""
    failed = 0
    for need in needs(config):
        p = need.presence
        if p.present:
            print(f"{p.what}: already present in {p.where}")
            continue
        if not p.fetchable:
            print(f"voicebot: {p.what} cannot be downloaded: {by_hand(need)}", file=sys.stderr)
            failed += 1
            continue
        try:
            where = _fetch(need, progress=progress)
        except (HubUnreachable, VoiceFetchError) as exc:
            print(f"voicebot: cannot download {p.what} ({exc}); {by_hand(need)}", file=sys.stderr)
            failed += 1
            continue
        print(f"{p.what}: downloaded to {where}")
    return 1 if failed else 0


def _fetch(need: Need, *, progress: bool) -> str:
    p = need.presence
    if need.role == ROLE_NAMES[STT]:
        return str(fetch_whisper(p.name, p.where, progress=progress))
    bar = _Bar(sys.stderr) if progress else None
    try:
        return str(asyncio.run(_fetch_voice(need, bar)))
    finally:
        if bar is not None:
            bar.end()


async def _fetch_voice(need: Need, bar: _Bar | None) -> object:
    async with aiohttp.ClientSession() as session:
        return await fetch_voice(
            session,
            need.presence.source,
            need.presence.name,
            need.presence.where,
            connect_timeout=10.0,
            progress=bar.show if bar is not None else None,
        )


class _Bar:
    """A one-line progress bar on a terminal: name, megabytes, percent."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = False

    def show(self, name: str, done: int, total: int | None) -> None:
        share = f"{100 * done // total:3d} %" if total else ""
        filled = 30 * done // total if total else 0
        line = f"\r{name} [{'#' * filled:<30}] {done / 1e6:6.1f} MB {share}"
        self.out.write(line)
        self.out.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            self.out.write("\n")


def voice_file(voice: str | None) -> str | None:
    """``speak --voice``: a path becomes absolute (the service accepts a voice file only as an
    absolute path, which no chat command can give); a name is passed as it is.

    Raises:
        BotError: the path is not a Piper voice (no such file, or no .onnx.json beside it).
    """
    if voice is None or not looks_like_path(voice):
        return voice
    problem = voice_problem(voice, None)
    if problem is not None:
        raise BotError(f"--voice: {problem}")
    return str(Path(voice).expanduser().resolve())


def for_operator(sentence: str) -> str:
    """A chat user's sentence as the CLI prints it: the person running it is the operator, so
    never "the operator has been told" but where to look."""
    hint = "the log above says why"
    if any(w in sentence for w in ("could not be loaded", "not downloaded")):  # a local engine
        hint += ", and 'voicebot models' what is missing"
    return _TOLD.sub(f"; {hint}", sentence, count=1)
