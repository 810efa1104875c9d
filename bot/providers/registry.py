"""Provider registry: each type's config schema, roles and factory; config → provider objects.

``providers:`` in the config is a map of named *instances*; each names a *type* (the key of
``TYPES``). An instance without ``type`` is of the type its name spells, so configs written before
the registry keep working.

How to add a type (e.g. ``local``):

1. Write ``bot/providers/<type>.py`` (or a package) with a factory
   ``build(config: ProviderConfig, context: BuildContext) -> Built``. It returns the role objects
   the type offers (``Built(stt=..., tts=...)``); each takes ``config.name`` as its ``name`` (the
   instance name is what jobs store and errors carry). HTTP types build requests on
   ``context.http`` (the one shared transport); other types ignore it. Keep the factory cheap:
   load models on first use, not here.
2. Add a ``ProviderType`` to ``TYPES``: its config ``options`` (their names are the keys of the
   instance's section, read and type-checked by ``bot.config.load``), ``roles``, default
   models/voice,
   and, when its Python dependencies live in an optional extra, ``extra`` + ``requires`` (the
   importable top-level modules), or ``role_extras`` when each role has its own extra. The
   factory module is imported only when an instance is built, so the core never imports an
   optional dependency; a missing one is a config error naming the ``pip install`` to run (a
   role's extra only when a route uses that role). The factory module itself must import the
   optional dependencies lazily (inside the engine, on first use): a role whose extra is missing
   is built but dropped.
3. Nothing else: the CLI, ``check-config``, the service and the worker only use instance names.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp

from bot.providers.base import SpeechToText, TextToSpeech
from bot.providers.chat import TextGenerator
from bot.providers.http import HttpTransport
from bot.providers.local.presence import Presence
from bot.providers.local.settings import COMPUTE_TYPES, DEVICES, TASKS
from bot.providers.local.voices import VOICE_SOURCE

_LOGGER = logging.getLogger(__name__)

STT = "stt"
TTS = "tts"
ROLE_NAMES = {STT: "speech-to-text", TTS: "text-to-speech"}


@dataclass(frozen=True, slots=True)
class Option:
    """One key of a provider instance's config section."""

    name: str
    kind: type
    """``str``, ``int``, ``float``, ``bool`` or ``list`` (a list of strings)."""
    default: Any = None
    secret: bool = False
    """Masked in logs, never printed (API keys)."""
    env: str | None = None
    """Environment variable named when the value is needed but missing."""
    positive: bool = False
    url: bool = False
    """Must be an http:// or https:// URL; a trailing slash is dropped."""
    choices: tuple[str, ...] = ()
    """When not empty, the only values allowed."""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One validated provider instance: its name, type and the settings its type's schema read."""

    name: str
    type: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    key_hint: str | None = None
    """Environment variable to set when the API key is missing."""
    key_unset: bool = False
    """The config writes the key as ``${VAR}`` and VAR is unset: a key was meant to be there."""
    declared: bool = True
    """False for a built-in instance the config does not list."""

    @property
    def api_key(self) -> str | None:
        """The API key, when the type has one and it is set."""
        value = self.settings.get("api_key")
        return str(value) if value else None

    @property
    def base_url(self) -> str | None:
        """The API base URL of an HTTP type (None for types that run locally)."""
        value = self.settings.get("base_url")
        return str(value) if value else None

    @property
    def timeout(self) -> float:
        """Seconds to wait for one answer."""
        return float(self.settings.get("timeout") or 120.0)

    def secrets(self) -> list[str]:
        """Every secret value of this instance (for the log filter)."""
        spec = TYPES.get(self.type)
        names = [o.name for o in spec.options if o.secret] if spec else ["api_key"]
        return [str(self.settings[n]) for n in names if self.settings.get(n)]

    def missing(self) -> str | None:
        """Why this instance cannot be used (a missing required key), or None."""
        spec = TYPES.get(self.type)
        required = spec is not None and spec.key_required
        if (required or self.key_unset) and not self.api_key:
            return self.missing_key_message()
        return None

    def missing_key_message(self) -> str:
        """The sentence shown when this instance is needed but has no key."""
        hint = f" (set {self.key_hint})" if self.key_hint else ""
        return f"providers.{self.name}.api_key: missing{hint}"


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What the composition root hands every factory."""

    http: HttpTransport
    """The one shared HTTP transport (one ``aiohttp.ClientSession``)."""
    voices: Mapping[str, str] = field(default_factory=dict)
    """Instance name → the default voice of the text-to-speech route using it (a local engine
    fetches that one voice when it is missing, never a voice a chat names)."""


@dataclass(frozen=True, slots=True)
class Built:
    """The role objects one instance offers."""

    stt: SpeechToText | None = None
    tts: TextToSpeech | None = None
    llm: TextGenerator | None = None
    """Chat completions on the same key (``type: openai`` and ``nanogpt``)."""


Factory = Callable[[ProviderConfig, BuildContext], Built]


@dataclass(frozen=True, slots=True)
class ProviderType:
    """A kind of provider: how its config section reads and how an instance is built."""

    name: str
    factory: str
    """``module:function``; imported only when an instance of this type is built."""
    roles: frozenset[str]
    options: tuple[Option, ...]
    summary: str
    default_models: Mapping[str, str] = field(default_factory=dict)
    default_voice: str | None = None
    key_required: bool = False
    """Unusable without ``api_key`` (hosted services that always need one)."""
    extra: str | None = None
    """The ``pip install voicebot[EXTRA]`` holding this type's dependencies."""
    requires: tuple[str, ...] = ()
    """Top-level modules of that extra, checked when the config is read."""
    role_extras: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    """Per-role extras (role → (extra, modules)) for a type whose roles have separate
    dependencies (e.g. speech-to-text in one extra, text-to-speech in another): checked only when
    a route uses the instance for that role."""
    implicit: bool = False
    """Present with defaults even when the config does not list it (configs from before the
    registry named these without a section)."""
    check: str | None = None
    """``module:function(role, model, voice, settings) -> list[str]``: a route's problems (a
    model path that is not there), found when the config is read; imported only then."""
    presence: str | None = None
    """``module:function(role, model, voice, settings) -> Presence``: where an engine on this
    machine looks for a route's model or voice and whether it is there (``voicebot models``)."""
    paths: str | None = None
    """``module:function(role, model, voice) -> list[str]``: what is wrong with a model or voice
    given as a path; an error even on a fallback route (nothing can fetch a path)."""

    def route_problems(
        self, role: str, model: str, voice: str | None, settings: Mapping[str, Any]
    ) -> list[str]:
        """What is wrong with using this type for ``role`` with ``model``/``voice``."""
        if (missing := self.missing_role_extra(role)) is not None:
            return [missing]
        if self.check is None:
            return []
        module, _, attr = self.check.partition(":")
        check = getattr(importlib.import_module(module), attr)
        return cast(list[str], check(role, model, voice, settings))

    def path_problems(self, role: str, model: str, voice: str | None) -> list[str]:
        """What is wrong with ``model``/``voice`` when given as a path (see :attr:`paths`)."""
        if self.paths is None:
            return []
        module, _, attr = self.paths.partition(":")
        check = getattr(importlib.import_module(module), attr)
        return cast(list[str], check(role, model, voice))

    def model_presence(
        self, role: str, model: str, voice: str | None, settings: Mapping[str, Any]
    ) -> Presence | None:
        """Where this machine has ``role``'s model or voice (None: a hosted type)."""
        if self.presence is None:
            return None
        module, _, attr = self.presence.partition(":")
        find = getattr(importlib.import_module(module), attr)
        return cast(Presence, find(role, model, voice, settings))

    def missing_extra(self) -> str | None:
        """The config problem when this type's optional dependencies are not installed."""
        if not _missing(self.requires):
            return None
        return f"type {self.name!r} needs `pip install voicebot[{self.extra}]`"

    def missing_role_extra(self, role: str) -> str | None:
        """The config problem when ``role``'s own optional dependencies are not installed."""
        extra, modules = self.role_extras.get(role, ("", ()))
        if not _missing(modules):
            return None
        return f"type {self.name!r} needs `pip install voicebot[{extra}]` for {ROLE_NAMES[role]}"

    def load(self) -> Factory:
        """Import and return the factory."""
        module, _, attr = self.factory.partition(":")
        return cast(Factory, getattr(importlib.import_module(module), attr))


def _missing(modules: tuple[str, ...]) -> list[str]:
    """The modules that cannot be imported (looked up, never imported)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def http_options(base_url: str, key_env: str) -> tuple[Option, ...]:
    """The options every HTTP type has: key, base URL and timeout."""
    return (
        Option("api_key", str, None, secret=True, env=key_env),
        Option("base_url", str, base_url, url=True),
        Option("timeout", float, 120.0, positive=True),
    )


TYPES: dict[str, ProviderType] = {
    "nanogpt": ProviderType(
        name="nanogpt",
        factory="bot.providers.nanogpt:build",
        roles=frozenset({STT, TTS}),
        options=http_options("https://nano-gpt.com/api", "NANOGPT_API_KEY"),
        summary="NanoGPT (hosted; Whisper, Elevenlabs, Kokoro, OpenAI voices)",
        default_models={STT: "Whisper-Large-V3", TTS: "Kokoro-82m"},
        default_voice="af_bella",
        key_required=True,
        implicit=True,
    ),
    "cantonese": ProviderType(
        name="cantonese",
        factory="bot.providers.cantonese:build",
        roles=frozenset({STT}),
        options=http_options("https://cantonese.ai", "CANTONESE_API_KEY"),
        summary="cantonese.ai (hosted; Cantonese speech-to-text with speaker labels)",
        default_models={STT: "cantonese"},
        key_required=True,
        implicit=True,
    ),
    "local": ProviderType(
        name="local",
        factory="bot.providers.local.factory:build",
        roles=frozenset({STT, TTS}),
        options=(
            Option("device", str, "cpu", choices=DEVICES),
            Option("compute_type", str, None, choices=COMPUTE_TYPES),
            Option("cpu_threads", int, None, positive=True),
            Option("workers", int, None, positive=True),
            Option("vad_filter", bool, True),
            Option("beam_size", int, 5, positive=True),
            Option("batch_size", int, None, positive=True),
            Option("batch_min_seconds", float, 300.0),
            Option("task", str, "transcribe", choices=TASKS),
            Option("word_timestamps", bool, False),
            Option("download_dir", str, None),
            Option("offline", bool, False),
            Option("keep_audio_hours", float, 24.0),
            Option("voices_dir", str, None),
            Option("tts_workers", int, 1, positive=True),
            Option("max_chars", int, 1000, positive=True),
            Option("voice_source", str, VOICE_SOURCE, url=True),
        ),
        summary="offline on this machine: faster-whisper speech-to-text, Piper voices",
        default_models={STT: "base", TTS: "piper"},
        extra="local",
        role_extras={STT: ("local", ("faster_whisper",)), TTS: ("local-tts", ("piper",))},
        check="bot.providers.local.factory:route_problems",
        paths="bot.providers.local.factory:path_problems",
        presence="bot.providers.local.presence:route_presence",
    ),
    "openai": ProviderType(
        name="openai",
        factory="bot.providers.openai:build",
        roles=frozenset({STT, TTS}),
        options=(
            *http_options("https://api.openai.com/v1", "OPENAI_API_KEY"),
            Option("max_upload_bytes", int, 25 * 1024 * 1024, positive=True),
            Option("max_chars", int, 4096, positive=True),
            Option("voices", list, ()),
            Option("instructions", str, None),
            Option("speech_format", str, "opus", choices=("opus", "mp3", "wav", "flac", "aac")),
            Option("timestamps", bool, True),
            Option("diarize_models", list, ("gpt-4o-transcribe-diarize",)),
        ),
        summary="any OpenAI-compatible /audio API (OpenAI, Groq, speaches, LocalAI, vLLM...)",
        default_models={STT: "whisper-1", TTS: "gpt-4o-mini-tts"},
        default_voice="alloy",
    ),
}
DEFAULT_PROVIDER = "nanogpt"
"""The instance ``stt``/``tts`` use when the config names none."""


def build_providers(
    providers: Mapping[str, ProviderConfig],
    session: aiohttp.ClientSession,
    voices: Mapping[str, str] | None = None,
) -> tuple[dict[str, SpeechToText], dict[str, TextToSpeech]]:
    """Instantiate every usable instance over one shared transport; the rest stay absent (the
    service then says why, e.g. the missing key). ``voices``: see :attr:`BuildContext.voices`."""
    context = BuildContext(http=HttpTransport(session), voices=dict(voices or {}))
    stt: dict[str, SpeechToText] = {}
    tts: dict[str, TextToSpeech] = {}
    for name, pc in providers.items():
        if pc.missing() is not None:
            continue
        spec = TYPES[pc.type]
        built = spec.load()(pc, context)
        if built.stt is not None and spec.missing_role_extra(STT) is None:
            stt[name] = built.stt
        if built.tts is not None and spec.missing_role_extra(TTS) is None:
            tts[name] = built.tts
        _LOGGER.debug("provider %s (%s) built", name, pc.type)
    return stt, tts


LLM_TYPES = ("openai", "nanogpt")
"""Provider types whose instances serve the ``llm`` route (OpenAI-compatible chat)."""


def build_text_generator(
    providers: Mapping[str, ProviderConfig], name: str | None, session: aiohttp.ClientSession
) -> TextGenerator | None:
    """The ``llm`` route's chat model (None: no route, or the instance is unusable, e.g. no
    key; summaries and translations are then not offered)."""
    pc = providers.get(name) if name else None
    if pc is None or pc.type not in LLM_TYPES or pc.missing() is not None:
        return None
    return TYPES[pc.type].load()(pc, BuildContext(http=HttpTransport(session))).llm


def describe(providers: Mapping[str, ProviderConfig], routes: Mapping[str, str]) -> list[str]:
    """One line per instance for ``check-config``: type, host, the routes using it, problems.

    Args:
        providers: the configured instances.
        routes: role (``stt``/``tts``) → the instance name it uses.
    """
    lines = []
    for name, pc in sorted(providers.items()):
        used = [role for role, chosen in sorted(routes.items()) if chosen == name]
        if not used and not pc.declared:
            continue  # a built-in nobody configured or uses: noise
        where = urlsplit(pc.base_url).netloc if pc.base_url else "local"
        uses = ", ".join(ROLE_NAMES[r] for r in used) if used else "not used by stt/tts"
        key = "" if pc.base_url is None else ("" if pc.api_key else ", no API key")
        problem = pc.missing()
        note = f" — {problem}" if problem and used else ""
        lines.append(f"{name}: type {pc.type}, {where}{key}; {uses}{note}")
    return lines
