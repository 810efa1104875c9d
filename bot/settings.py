"""Per-chat settings (language, diarization, voice, auto-transcribe): parsing shared by adapters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from bot.errors import InputError

_LANGUAGE = re.compile(r"^(auto|[a-z]{2,3}(-[a-z0-9]{2,8})?)$", re.IGNORECASE)
_VOICE = re.compile(r"^[\w.\-]{1,64}$")
_ON = {"on", "true", "yes", "1", "enable", "enabled"}
_OFF = {"off", "false", "no", "0", "disable", "disabled"}

SETTING_NAMES = ("language", "diarize", "voice", "autotranscribe")
SETTINGS_USAGE = (
    "Settings: language <code|auto>, diarize <on|off>, voice <name|default>, "
    "autotranscribe <on|off>. Example: /settings language en"
)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What one chat chose; ``None`` means "use the bot's configured default"."""

    language: str | None = None
    diarize: bool | None = None
    voice: str | None = None
    auto_transcribe: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for the store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatSettings:
        """Inverse of :meth:`to_dict`, ignoring unknown keys from older versions."""
        return cls(
            language=data.get("language"),
            diarize=data.get("diarize"),
            voice=data.get("voice"),
            auto_transcribe=bool(data.get("auto_transcribe", True)),
        )


def _switch(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _ON:
        return True
    if lowered in _OFF:
        return False
    raise InputError(f"{name} takes on or off, not {value.strip()[:30]!r}.")


def apply_setting(settings: ChatSettings, name: str, value: str) -> ChatSettings:
    """Return ``settings`` with one setting changed from user text.

    Raises:
        InputError: unknown setting or a value it does not take, with a sentence saying why.
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    value = value.strip()
    if not value:
        raise InputError(f"{name} needs a value. {SETTINGS_USAGE}")
    if key in ("language", "lang"):
        if not _LANGUAGE.match(value):
            raise InputError(
                f"{value[:30]!r} is not a language code; use a code like en, de, yue, or auto."
            )
        lang = value.lower()
        return replace(settings, language=None if lang == "auto" else lang)
    if key in ("diarize", "diarization", "speakers"):
        return replace(settings, diarize=_switch("diarize", value))
    if key == "voice":
        if value.lower() == "default":
            return replace(settings, voice=None)
        if not _VOICE.match(value):
            raise InputError("A voice name is letters, digits, dots, dashes or underscores.")
        return replace(settings, voice=value)
    if key in ("autotranscribe", "auto"):
        return replace(settings, auto_transcribe=_switch("autotranscribe", value))
    raise InputError(f"There is no setting called {name.strip()[:30]!r}. {SETTINGS_USAGE}")


def describe_settings(settings: ChatSettings, *, language: str, diarize: bool, voice: str) -> str:
    """Plain-text summary; the keyword arguments are the bot's defaults for unset values."""

    def shown(value: object, default: object) -> str:
        return f"{value}" if value is not None else f"{default} (default)"

    lines = [
        f"language: {shown(settings.language, language)}",
        "diarize: "
        + shown(
            None if settings.diarize is None else ("on" if settings.diarize else "off"),
            "on" if diarize else "off",
        ),
        f"voice: {shown(settings.voice, voice)}",
        f"autotranscribe: {'on' if settings.auto_transcribe else 'off'}",
    ]
    return "\n".join(lines)
