"""Multi-line chat texts from settings: /settings with where each value comes from, /voices."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.chat.settings import ChatSettings, UserSettings
from bot.text.translator import Text


@dataclass(frozen=True, slots=True)
class Defaults:
    """The configured values that apply when neither the user nor the chat chose."""

    language: str
    diarize: bool
    voice: str
    output: str = "messages"
    live: bool = True


def _source(tr: Text, user: object, chat: object) -> str:
    if user is not None:
        return tr.gettext("your setting")
    if chat is not None:
        return tr.gettext("this chat")
    return tr.gettext("default")


def _language(tr: Text, code: str) -> str:
    return tr.gettext("automatic") if code == "auto" else f"{tr.language_name(code)} ({code})"


def describe_settings(
    tr: Text, chat: ChatSettings, user: UserSettings, defaults: Defaults, ui_locale: str
) -> str:
    """One line per setting: its value and whose it is (user > chat > config)."""
    language = user.language or chat.language or defaults.language
    voice = user.voice or chat.voice or defaults.voice
    diarize = defaults.diarize if chat.diarize is None else chat.diarize
    ui_source = user.ui_language or chat.ui_language
    lines = [
        tr.gettext("Settings:"),
        tr.gettext(
            "language: {value} ({source})",
            value=_language(tr, language),
            source=_source(tr, user.language, chat.language),
        ),
        tr.gettext(
            "voice: {value} ({source})",
            value=voice or "-",
            source=_source(tr, user.voice, chat.voice),
        ),
        tr.gettext(
            "diarize: {value} ({source})",
            value=tr.on_off(diarize),
            source=_source(tr, None, chat.diarize),
        ),
        tr.gettext(
            "live: {value} ({source})",
            value=tr.on_off(defaults.live if chat.live is None else chat.live),
            source=_source(tr, None, chat.live),
        ),
        tr.gettext("autotranscribe: {value}", value=tr.on_off(chat.auto_transcribe)),
        tr.gettext(
            "output: {value} ({source})",
            value=output_words(tr, chat.output or defaults.output),
            source=_source(tr, None, chat.output),
        ),
        tr.gettext(
            "ui_language: {value} ({source})",
            value=tr.language_name(ui_locale),
            source=_source(tr, user.ui_language, chat.ui_language)
            if ui_source
            else tr.gettext("your app's language"),
        ),
    ]
    return "\n".join(lines)


def settings_hint(tr: Text) -> str:
    """How to change a setting, for the chat and for oneself."""
    return tr.gettext(
        "Change one for this chat with /settings NAME VALUE (e.g. /settings language German), "
        "or only for yourself, in every chat, with /settings me NAME VALUE."
    )


def output_words(tr: Text, output: str) -> str:
    """The words for an output mode."""
    words = {
        "messages": tr.gettext("as messages"),
        "file": tr.gettext("as a file"),
        "both": tr.gettext("as messages and a file"),
    }
    return words.get(output, output)


def voices_text(tr: Text, voices: Collection[str], current: str) -> str:
    """What /voices answers."""
    if not voices:
        return tr.gettext(
            "This speech service does not list its voices; the current one is {voice}. "
            "Set another with /settings voice NAME.",
            voice=current or "-",
        )
    listed = "\n".join(f"• {v}" + (" ✓" if v == current else "") for v in sorted(voices))
    header = tr.ngettext("{n} voice:", "{n} voices:", len(voices))
    footer = tr.gettext("Choose one with /settings voice NAME (or /settings me voice NAME).")
    return f"{header}\n{listed}\n{footer}"
