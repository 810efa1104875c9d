"""The configuration: every section validated at once into frozen dataclasses.

The chat platforms' sections are read by their plugins (``platforms=``): this module names none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from bot.config.links import read_links
from bot.config.providers import read_providers
from bot.config.reader import MISSING, Section, positive, read_choice, yaml_problem
from bot.config.reader import expand_env as expand_env  # public here since before the split
from bot.config.routes import read_route, route_checks
from bot.links import LinkSettings
from bot.model.errors import ConfigError
from bot.providers.registry import (
    DEFAULT_PROVIDER,
    LLM_TYPES,
    STT,
    TTS,
    ProviderConfig,
)


class PlatformSettings(Protocol):
    """A chat platform's validated config section, as its plugin reads it."""

    @property
    def token(self) -> str | None:
        """The bot token; None: the platform is not started."""
        ...


PlatformReader = Callable[[Section], PlatformSettings]
"""Reads one platform's section, appending every problem to the section's list."""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Where the database lives (a SQLite file, or a PostgreSQL ``url``) and how long results are
    kept."""

    path: Path
    retention_days: int = 30
    url: str | None = None  # postgresql://… (several processes); None: the SQLite file at path

    @property
    def target(self) -> str:
        """What the storage opens: the PostgreSQL URL, else the SQLite path."""
        return self.url or str(self.path)


@dataclass(frozen=True, slots=True)
class SttConfig:
    """Default speech-to-text choice; chats may override language and diarization."""

    provider: str = DEFAULT_PROVIDER
    model: str = "Whisper-Large-V3"
    language: str = "auto"
    diarize: bool = False
    live_transcripts: bool = True
    """The placeholder shows the text of finished segments/parts while a transcription runs."""
    note: str | None = None
    """Why this route is not the configured provider (its fallback is used); logged at start."""


@dataclass(frozen=True, slots=True)
class TtsConfig:
    """Default text-to-speech choice; chats may override the voice."""

    provider: str = DEFAULT_PROVIDER
    model: str = "Kokoro-82m"
    voice: str = "af_bella"
    speed: float = 1.0
    note: str | None = None
    """As :attr:`SttConfig.note`."""


@dataclass(frozen=True, slots=True)
class JobsConfig:
    """How the poller runs jobs."""

    deadline_seconds: float = 1800.0
    concurrency: int = 32
    max_poll_interval: float = 30.0
    part_concurrency: int = 2
    audio_threads: int | None = None  # None: one per core beyond the event loop's, at least one


@dataclass(frozen=True, slots=True)
class LlmConfig:
    """The chat model for summaries and translations; no provider means none are offered."""

    provider: str | None = None
    model: str = ""
    max_input_tokens: int = 8000
    """The model's context for one request's input: longer transcripts are summarized in
    pieces first (map), then the pieces' summaries together (reduce)."""


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """The /healthz and /metrics endpoint of ``voicebot run`` (loopback by default)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464


@dataclass(frozen=True, slots=True)
class ShutdownConfig:
    """How ``voicebot run`` drains on SIGTERM/SIGINT."""

    grace_seconds: float = 20.0
    """How long steps in flight may take to finish and deliver after the signal (compose's
    ``stop_grace_period`` is set above it, so Docker does not kill the drain)."""


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Per-user and per-chat limits that protect the operator's provider budget (0 = no limit)."""

    jobs_per_minute: int = 6
    concurrent_per_user: int = 3
    concurrent_per_chat: int = 10
    max_audio_minutes: float = 30.0
    max_speak_chars: int = 2000
    daily_audio_minutes_per_user: float = 60.0
    daily_audio_minutes_per_chat: float = 240.0
    daily_tts_chars_per_user: int = 20000
    daily_tts_chars_per_chat: int = 100000


@dataclass(frozen=True, slots=True)
class AccessConfig:
    """Who may use the bot: ids written ``platform:user:ID``, ``platform:chat:ID`` or
    ``platform:guild:ID``. Deny wins; a non-empty allow list admits only what it names."""

    admins: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    storage: StorageConfig
    providers: Mapping[str, ProviderConfig]
    stt: SttConfig
    tts: TtsConfig
    jobs: JobsConfig
    log_level: str = "INFO"
    limits: LimitsConfig = LimitsConfig()
    access: AccessConfig = AccessConfig()
    health: HealthConfig = HealthConfig()
    llm: LlmConfig = LlmConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    platforms: Mapping[str, PlatformSettings] = field(default_factory=dict)
    """Each chat platform's section by name, read by the platform readers passed to
    :func:`parse_config`."""
    links: LinkSettings = field(default_factory=LinkSettings)


def _read_stt_tts(
    root: Section, providers: Mapping[str, ProviderConfig], *, require_keys: bool = True
) -> tuple[SttConfig, TtsConfig]:
    s, name, spec, fb, note = read_route(root, STT, providers, require_keys)
    model = (spec.default_models.get(STT) if spec else None) or SttConfig().model
    model = s.get("model", str, model) or model
    if fb is not None and spec is not None:
        model = fb.get("model") or spec.default_models.get(STT) or model
    stt = SttConfig(
        provider=name,
        model=model,
        language=s.get("language", str, "auto") or "auto",
        diarize=bool(s.get("diarize", bool, False)),
        live_transcripts=bool(s.get("live_transcripts", bool, True)),
        note=route_checks(s, STT, providers.get(name), spec, (model, None), note),
    )
    s.finish()
    t, name, spec, fb, note = read_route(root, TTS, providers, require_keys)
    model = (spec.default_models.get(TTS) if spec else None) or TtsConfig().model
    voice = (spec.default_voice if spec else None) or TtsConfig().voice
    model = t.get("model", str, model) or model
    voice = t.get("voice", str, voice) or voice
    if fb is not None and spec is not None:
        model = fb.get("model") or spec.default_models.get(TTS) or model
        voice = fb.get("voice") or spec.default_voice or voice
    tts = TtsConfig(
        provider=name,
        model=model,
        voice=voice,
        speed=t.get("speed", float, 1.0) or 1.0,
        note=route_checks(t, TTS, providers.get(name), spec, (model, voice), note),
    )
    positive(t, "speed", tts.speed)
    t.finish()
    return stt, tts


def _read_limits(root: Section) -> LimitsConfig:
    sec = root.section("limits")
    base = LimitsConfig()
    values: dict[str, Any] = {}
    for name in LimitsConfig.__dataclass_fields__:
        default = getattr(base, name)
        value = sec.get(name, type(default), default)
        if value is not None and value < 0:
            sec.problems.append(f"{sec._key(name)}: must be 0 (no limit) or more")
        values[name] = default if value is None else value
    sec.finish()
    return LimitsConfig(**values)


def _read_access(root: Section, platforms: Collection[str]) -> AccessConfig:
    """``access:`` lists of ``platform:user|chat|guild:ID`` (a platform: one whose section is
    read; any name when no platform readers were given)."""
    sec = root.section("access")
    names = "|".join(re.escape(p) for p in sorted(platforms)) or r"[a-z][a-z0-9_]*"
    identity = re.compile(rf"^({names}):(user|chat|guild):-?\d+$")
    lists: dict[str, tuple[str, ...]] = {}
    for name in ("admins", "allow", "deny"):
        raw = sec.raw(name)
        items: list[str] = []
        if raw is not MISSING and raw is not None:
            if not isinstance(raw, list):
                sec.problems.append(f"{sec._key(name)}: expected a list, got {raw!r}")
                raw = []
            for item in raw:
                text = str(item).strip()
                if name == "admins" and re.fullmatch(rf"({names}):-?\d+", text):
                    text = text.replace(":", ":user:", 1)  # admins are users: allow the short form
                if not identity.match(text):
                    sec.problems.append(
                        f"{sec._key(name)}: {text!r} is not platform:user|chat|guild:ID "
                        "(e.g. telegram:user:12345)"
                    )
                items.append(text)
        lists[name] = tuple(items)
    sec.finish()
    return AccessConfig(**lists)


def _read_health(root: Section) -> HealthConfig:
    sec = root.section("health")
    health = HealthConfig(
        enabled=bool(sec.get("enabled", bool, True)),
        host=sec.get("host", str, "127.0.0.1") or "127.0.0.1",
        port=int(sec.get("port", int, 9464) or 0),
    )
    if not 0 <= health.port <= 65535:
        sec.problems.append(f"{sec._key('port')}: expected 0-65535 (0: any free port)")
    sec.finish()
    return health


def _read_shutdown(root: Section) -> ShutdownConfig:
    sec = root.section("shutdown")
    grace = sec.get("grace_seconds", float, 20.0)
    shutdown = ShutdownConfig(grace_seconds=20.0 if grace is None else grace)
    if shutdown.grace_seconds < 0:
        sec.problems.append(f"{sec._key('grace_seconds')}: must be 0 or more")
    sec.finish()
    return shutdown


def parse_config(
    data: Any,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    *,
    require_keys: bool = True,
    platforms: Mapping[str, PlatformReader] | None = None,
) -> Config:
    """Validate a parsed YAML document into a :class:`Config`.

    ``require_keys=False`` accepts a missing provider key (commands that only read the database).
    ``platforms`` reads the chat platforms' sections (name → reader); a top-level section that
    neither this module nor a reader knows is an unknown key.

    Raises:
        ConfigError: listing every problem with its key path.
    """
    problems: list[str] = []
    root = Section(data, "", problems, os.environ if env is None else env)
    storage = _read_storage(root, base_dir)
    providers = read_providers(root)
    stt, tts = _read_stt_tts(root, providers, require_keys=require_keys)
    jobs = _read_jobs(root)
    read = {name: reader(root.section(name)) for name, reader in (platforms or {}).items()}
    limits, access = _read_limits(root), _read_access(root, read)
    llm = _read_llm(root, providers)
    health = _read_health(root)
    shutdown, links = _read_shutdown(root), read_links(root)
    log = root.section("logging")
    level = read_choice(log, "level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
    log.finish()
    root.finish()
    if problems:
        raise ConfigError(sorted(dict.fromkeys(problems)))
    sections = (limits, access, health, llm, shutdown, read, links)
    return Config(storage, providers, stt, tts, jobs, level, *sections)


def _read_storage(root: Section, base_dir: Path | None) -> StorageConfig:
    """``storage:``; ``VOICEBOT_DATABASE_URL`` wins over ``storage.url``."""
    st = root.section("storage")
    url = st.get("url", str, None)
    url = root.env.get("VOICEBOT_DATABASE_URL") or url
    db_path = Path(st.get("path", str, "voicebot.sqlite3") or "voicebot.sqlite3").expanduser()
    if url and url.startswith("sqlite:///"):
        db_path, url = Path(url.removeprefix("sqlite:///")).expanduser(), None
    elif url and not url.startswith(("postgresql://", "postgres://")):
        st.problems.append("storage.url: expected postgresql://… or sqlite:///path")
        url = None
    if base_dir is not None and not db_path.is_absolute():
        db_path = base_dir / db_path
    storage = StorageConfig(
        path=db_path, retention_days=st.get("retention_days", int, 30) or 30, url=url
    )
    positive(st, "retention_days", storage.retention_days)
    st.finish()
    return storage


def _read_jobs(root: Section) -> JobsConfig:
    j = root.section("jobs")
    jobs = JobsConfig(
        deadline_seconds=j.get("deadline_seconds", float, 1800.0) or 1800.0,
        concurrency=j.get("concurrency", int, 32) or 32,
        max_poll_interval=j.get("max_poll_interval", float, 30.0) or 30.0,
        part_concurrency=j.get("part_concurrency", int, 2) or 2,
        audio_threads=j.get("audio_threads", int, None),
    )
    keys = ("deadline_seconds", "concurrency", "max_poll_interval", "part_concurrency")
    for key in (*keys, "audio_threads"):
        positive(j, key, getattr(jobs, key))
    j.finish()
    return jobs


def _read_llm(root: Section, providers: Mapping[str, ProviderConfig]) -> LlmConfig:
    """The optional ``llm:`` route: an instance of a chat-capable type, a model, its context."""
    s = root.section("llm")
    name = s.get("provider", str, None)
    model = s.get("model", str, "", required=name is not None) or ""
    tokens = s.get("max_input_tokens", int, 8000) or 8000
    positive(s, "max_input_tokens", tokens)
    s.finish()
    if name is None:
        return LlmConfig()
    pc = providers.get(name)
    if pc is None:
        known = ", ".join(sorted(providers))
        s.problems.append(f"llm.provider: unknown provider {name!r} (configured: {known})")
    elif pc.type not in LLM_TYPES:
        kinds = " or ".join(LLM_TYPES)
        s.problems.append(f"llm.provider: {name!r} is type {pc.type}; chat needs type {kinds}")
    return LlmConfig(provider=name, model=model, max_input_tokens=tokens)


def load_config(
    path: Path,
    env: Mapping[str, str] | None = None,
    *,
    require_keys: bool = True,
    platforms: Mapping[str, PlatformReader] | None = None,
) -> Config:
    """Read and validate the YAML file at ``path`` (see :func:`parse_config`).

    Raises:
        ConfigError: the file is missing, not YAML, or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            [f"{path}: file not found (copy config.example.yaml, or pass --config PATH)"]
        ) from exc
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML{yaml_problem(exc)}"]) from exc
    return parse_config(
        data, env, base_dir=path.resolve().parent, require_keys=require_keys, platforms=platforms
    )
