"""Chat and user settings (languages, diarization, voice, output...): parsing shared by adapters."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import langcodes

from bot.model.errors import InputError
from bot.text import Language, Msg, msg, negotiate, shipped_locales
from bot.text.translator import standard_code

_VOICE = re.compile(r"^[\w.\-]{1,64}$")
_ON = {"on", "true", "yes", "1", "enable", "enabled"}
_OFF = {"off", "false", "no", "0", "disable", "disabled"}
OUTPUTS = ("messages", "file", "both")

SETTING_NAMES = (
    "language",
    "diarize",
    "voice",
    "autotranscribe",
    "ui_language",
    "output",
    "live",
)
USER_SETTING_NAMES = ("language", "voice", "ui_language")
SETTINGS_USAGE = msg(
    "Settings: language <code|name|auto>, diarize <on|off>, voice <name|default>, "
    "autotranscribe <on|off>, ui_language <code|auto>, output <messages|file|both>. "
    "Example: /settings language German. Your own, for every chat: /settings me language de"
)
_ALIASES = {
    "lang": "language",
    "diarization": "diarize",
    "speakers": "diarize",
    "auto": "autotranscribe",
    "uilanguage": "ui_language",
    "ui": "ui_language",
    "interface": "ui_language",
    "livetranscripts": "live",
}


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What one chat chose; ``None`` means "use the bot's configured default"."""

    language: str | None = None
    diarize: bool | None = None
    voice: str | None = None
    auto_transcribe: bool = True
    ui_language: str | None = None
    output: str | None = None
    live: bool | None = None
    """Show the transcript growing in the placeholder (``live_transcripts``)."""

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
            ui_language=data.get("ui_language"),
            output=data.get("output"),
            live=data.get("live"),
        )


@dataclass(frozen=True, slots=True)
class UserSettings:
    """One person's own choices, in every chat; they win over the chat's (user > chat > config)."""

    language: str | None = None
    voice: str | None = None
    ui_language: str | None = None
    client_locale: str | None = None
    """Not chosen but seen: the language of the person's app on their last interaction (Discord
    messages carry none, so a voice message is answered in it)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for the store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserSettings:
        """Inverse of :meth:`to_dict`, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class Prefs:
    """A chat's and a person's settings together: what every job starts from."""

    chat: ChatSettings = ChatSettings()
    user: UserSettings = UserSettings()


def setting_key(name: str) -> str:
    """The canonical setting name for what a user typed (``lang``, ``ui-language``...).

    Raises:
        InputError: there is no such setting.
    """
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key.replace("_", ""), key)
    if key.replace("_", "") == "autotranscribe":
        key = "autotranscribe"
    if key not in SETTING_NAMES:
        raise InputError(
            msg("There is no setting called {name}.", name=repr(name.strip()[:30])),
        )
    return key


def _switch(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _ON:
        return True
    if lowered in _OFF:
        return False
    raise InputError(msg("{name} takes on or off, not {value}.", name=name, value=repr(value[:30])))


def parse_language(value: str, supported: Collection[str] = ()) -> str:
    """A language code from what people type: ``de``, ``de-DE``, ``German``, ``Deutsch``,
    ``iw`` (→ ``he``), ``cantonese`` (→ ``yue``); ``auto`` stays ``auto``.

    Args:
        value: the user's text.
        supported: the codes the transcription model takes (empty: not declared, any code).

    Raises:
        InputError: not a language, or one the model does not take, with a suggestion.
    """
    text = value.strip()
    if text.lower() in ("auto", "detect", "automatic"):
        return "auto"
    code = _language_code(text)
    if code is None:
        raise InputError(_not_a_language(text, supported))
    if supported:
        base = code.split("-")[0]
        if code not in supported and base not in supported:
            raise InputError(
                msg(
                    "The transcription model does not know {language} ({code}).",
                    language=Language(code),
                    code=code,
                )
            )
        return code if code in supported else base
    return code


def _language_code(text: str) -> str | None:
    return standard_code(text)


def _not_a_language(text: str, supported: Collection[str]) -> Msg:
    names = {langcodes.Language.get(c).display_name().lower(): c for c in supported}
    close = difflib.get_close_matches(text.lower(), [*names, *supported], n=1, cutoff=0.6)
    if close:
        guess = names.get(close[0], close[0])
        return msg(
            "{value} is not a language I know. Did you mean {suggestion} ({code})?",
            value=repr(text[:30]),
            suggestion=Language(guess),
            code=guess,
        )
    return msg(
        "{value} is not a language I know; use a code or a name like en, de, yue, German, or auto.",
        value=repr(text[:30]),
    )


def parse_voice(value: str, voices: Collection[str] = ()) -> str | None:
    """A voice name (``default`` → None), checked against the provider's list when it has one.

    Raises:
        InputError: a malformed or unknown name, with the closest known one.
    """
    if value.lower() == "default":
        return None
    if not _VOICE.match(value):
        raise InputError(msg("A voice name is letters, digits, dots, dashes or underscores."))
    if voices and value not in voices:
        raise InputError(unknown_voice(value, voices))
    return value


def unknown_voice(voice: str, voices: Collection[str]) -> Msg:
    """The refusal of an unknown voice, with a "did you mean" when one is close."""
    lowered = {v.lower(): v for v in voices}
    close = difflib.get_close_matches(voice.lower(), list(lowered), n=1, cutoff=0.5)
    if close:
        return msg(
            "There is no voice {voice} here. Did you mean {suggestion}? /voices lists them all.",
            voice=repr(voice),
            suggestion=lowered[close[0]],
        )
    return msg("There is no voice {voice} here. /voices lists them all.", voice=repr(voice))


def parse_ui_language(value: str) -> str | None:
    """A shipped interface language (``auto`` → None: follow each user's app language)."""
    text = value.strip()
    if text.lower() in ("auto", "default"):
        return None
    code = _language_code(text)
    found = negotiate(code) if code else None
    if found is None or (found == "en" and not (code or "").startswith("en")):
        raise InputError(
            msg(
                "I cannot speak {value} yet. Languages: {languages}.",
                value=repr(text[:30]),
                languages=", ".join(c.replace("_", "-") for c in shipped_locales()),
            )
        )
    return found


def apply_setting(
    settings: ChatSettings,
    name: str,
    value: str,
    *,
    languages: Collection[str] = (),
    voices: Collection[str] = (),
) -> ChatSettings:
    """Return ``settings`` with one setting changed from user text.

    Raises:
        InputError: unknown setting or a value it does not take, with a sentence saying why.
    """
    key = setting_key(name)
    value = value.strip()
    if not value:
        raise InputError(msg("{name} needs a value.", name=key))
    if key == "language":
        lang = parse_language(value, languages)
        return replace(settings, language=None if lang == "auto" else lang)
    if key == "diarize":
        return replace(settings, diarize=_switch("diarize", value))
    if key == "voice":
        return replace(settings, voice=parse_voice(value, voices))
    if key == "autotranscribe":
        return replace(settings, auto_transcribe=_switch("autotranscribe", value))
    if key == "ui_language":
        return replace(settings, ui_language=parse_ui_language(value))
    if key == "live":
        return replace(settings, live=_switch("live", value))
    output = value.lower()
    if output not in OUTPUTS:
        raise InputError(
            msg("output takes messages, file or both, not {value}.", value=repr(value[:30]))
        )
    return replace(settings, output=output)


def apply_user_setting(
    settings: UserSettings,
    name: str,
    value: str,
    *,
    languages: Collection[str] = (),
    voices: Collection[str] = (),
) -> UserSettings:
    """Like :func:`apply_setting` for a user's own settings (language, voice, ui_language).

    Raises:
        InputError: not a per-user setting, or a bad value.
    """
    key = setting_key(name)
    value = value.strip()
    if key not in USER_SETTING_NAMES:
        raise InputError(
            msg(
                "{name} is set per chat; your own settings are language, voice and ui_language.",
                name=key,
            )
        )
    if not value:
        raise InputError(msg("{name} needs a value.", name=key))
    if key == "language":
        lang = parse_language(value, languages)
        return replace(settings, language=None if lang == "auto" else lang)
    if key == "voice":
        return replace(settings, voice=parse_voice(value, voices))
    return replace(settings, ui_language=parse_ui_language(value))
