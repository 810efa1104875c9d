"""Text: one locale's translated sentences, numbers, sizes and durations (gettext + Babel)."""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import langcodes
from babel import Locale, UnknownLocaleError
from babel.dates import format_timedelta
from babel.numbers import format_decimal

from bot.text.catalog import SOURCE_LOCALE, shipped_locales, translations

_FORMATTER = string.Formatter()


@dataclass(frozen=True, slots=True)
class Duration:
    """Seconds to show as a duration in the reader's language: ``2 minutes``, ``2 Minuten``
    (``short``: ``3 hr 10 min``, ``3 Std. 10 Min.``)."""

    seconds: float
    short: bool = False


@dataclass(frozen=True, slots=True)
class Size:
    """Bytes to show as megabytes in the reader's language (``20 MB``, ``25,3 MB``)."""

    nbytes: int


@dataclass(frozen=True, slots=True)
class Language:
    """A language code to show by name in the reader's language (``de`` → ``Deutsch``)."""

    code: str


@dataclass(frozen=True, slots=True)
class Msg:
    """A sentence not yet translated: its msgid (plural form and count) and its arguments.

    Errors carry one, so the same failure can be shown to each reader in their language, and a
    failed job keeps it (:func:`encode` / :func:`decode`) until its reply is delivered.
    """

    id: str
    plural: str | None = None
    n: int | None = None
    args: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return ENGLISH.render(self)


def msg(message: str, /, **args: Any) -> Msg:
    """Mark ``message`` for extraction and keep it untranslated until someone reads it."""
    return Msg(message, args=args)


def msgn(singular: str, plural: str, n: int, /, **args: Any) -> Msg:
    """Like :func:`msg` for a sentence with a count (``{n}`` is available to both forms)."""
    return Msg(singular, plural, n, {"n": n, **args})


def encode(message: Msg | str) -> str:
    """Storage form of a message: the plain msgid when it has no arguments (readable in the
    database), else JSON."""
    if isinstance(message, str):
        return message
    if message.plural is None and not message.args:
        return message.id
    args = {k: _encode_arg(v) for k, v in message.args.items()}
    return json.dumps({"msgid": message.id, "plural": message.plural, "n": message.n, "args": args})


def decode(stored: str) -> Msg:
    """Inverse of :func:`encode`; any other text (older rows, a provider's own words) is a msgid
    that stays as it is when no catalog knows it."""
    if stored.startswith('{"msgid"'):
        try:
            data = json.loads(stored)
            args = {k: _decode_arg(v) for k, v in data.get("args", {}).items()}
            return Msg(str(data["msgid"]), data.get("plural"), data.get("n"), args)
        except (ValueError, KeyError, TypeError):
            pass
    return Msg(stored)


def _encode_arg(value: Any) -> Any:
    if isinstance(value, Duration):
        return {"$duration": value.seconds, "short": value.short}
    if isinstance(value, Size):
        return {"$size": value.nbytes}
    if isinstance(value, Language):
        return {"$language": value.code}
    if isinstance(value, Msg):
        return {"$msg": encode(value)}
    return value


def _decode_arg(value: Any) -> Any:
    if isinstance(value, dict):
        if "$duration" in value:
            return Duration(float(value["$duration"]), bool(value.get("short")))
        if "$size" in value:
            return Size(int(value["$size"]))
        if "$language" in value:
            return Language(str(value["$language"]))
        if "$msg" in value:
            return decode(str(value["$msg"]))
    return value


class Text:
    """Sentences, numbers and durations for one reader's locale."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.locale = Locale.parse(code)
        self._tr = translations(code)

    def __repr__(self) -> str:
        return f"Text({self.code!r})"

    def gettext(self, message: str, /, **args: Any) -> str:
        """``message`` translated, with ``{name}`` placeholders filled in locale form."""
        return self._fill(self._tr.gettext(message), args)

    def ngettext(self, singular: str, plural: str, n: int, /, **args: Any) -> str:
        """The plural form for ``n`` (``{n}`` is filled in too)."""
        return self._fill(self._tr.ngettext(singular, plural, n), {"n": n, **args})

    def render(self, message: Msg | str) -> str:
        """A stored or raised message in this locale."""
        if isinstance(message, str):
            message = decode(message)
        if message.plural is not None and message.n is not None:
            return self.ngettext(message.id, message.plural, message.n, **message.args)
        return self.gettext(message.id, **message.args)

    def _fill(self, template: str, args: Mapping[str, Any]) -> str:
        if not args:
            return template
        values = {k: self.value(v) for k, v in args.items()}
        try:
            return _FORMATTER.vformat(template, (), values)
        except (KeyError, IndexError, ValueError):
            return template  # a broken translation must not break the reply

    def value(self, value: Any) -> str:
        """One argument in locale form: numbers grouped, durations and sizes in words."""
        if isinstance(value, bool):
            return self.on_off(value)
        if isinstance(value, int):
            return self.number(value)
        if isinstance(value, float):
            return self.number(value, digits=2)
        if isinstance(value, Duration):
            return self.duration(value.seconds, short=value.short)
        if isinstance(value, Size):
            return self.size(value.nbytes)
        if isinstance(value, Language):
            return self.language_name(value.code)
        if isinstance(value, Msg):
            return self.render(value)
        return str(value)

    def number(self, value: float, *, digits: int = 0) -> str:
        """``1,234`` / ``1.234`` / ``1 234``; at most ``digits`` decimals."""
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def decimal(self, value: float, digits: int) -> str:
        """Exactly ``digits`` decimals (costs)."""
        pattern = "#,##0." + "0" * digits if digits else "#,##0"
        return format_decimal(value, format=pattern, locale=self.locale)

    def duration(self, seconds: float, *, short: bool = True) -> str:
        """``42 sec``, ``2 min 30 sec``, ``3 hr 10 min``, ``2 days`` (``short=False``:
        ``2 minutes 30 seconds``) in the reader's words."""
        seconds = max(0, int(seconds))
        style: Literal["short", "long"] = "short" if short else "long"

        def unit(amount: int, name: str) -> str:
            return format_timedelta(
                timedelta(**{name: amount}), threshold=1.0, format=style, locale=self.locale
            )

        if seconds < 60:
            return unit(seconds, "seconds")
        if seconds < 3600:
            minutes, rest = divmod(seconds, 60)
            return unit(minutes, "minutes") + (f" {unit(rest, 'seconds')}" if rest else "")
        if seconds < 86400:
            hours, minutes = divmod(seconds // 60, 60)
            return unit(hours, "hours") + (f" {unit(minutes, 'minutes')}" if minutes else "")
        return unit(seconds // 86400, "days")

    def size(self, nbytes: int) -> str:
        """Megabytes, one decimal unless whole."""
        mb = nbytes / (1024 * 1024)
        return self.gettext("{mb} MB", mb=round(mb, 1) if mb != int(mb) else int(mb))

    def on_off(self, value: bool) -> str:
        """The words for a switch's two positions."""
        return self.gettext("on") if value else self.gettext("off")

    def language_name(self, code: str) -> str:
        """A language's name in the reader's language (``Deutsch``/``German``/``德文``); what a
        provider reported (a code, or a name like ``english``) is shown as is when unknown."""
        tag = standard_code(code)
        if tag is None:
            return code
        try:
            name = Locale.parse(tag.replace("-", "_")).get_display_name(self.locale)
        except (UnknownLocaleError, ValueError, TypeError):
            name = None
        if not name:
            name = langcodes.Language.get(tag).display_name(self.code.replace("_", "-"))
        return name[:1].upper() + name[1:]


_NAME = re.compile(r"[^\W\d_]+(?:[ '][^\W\d_]+)*(?: \([^\W\d_ ]+(?: [^\W\d_]+)*\))?")


def standard_code(text: str) -> str | None:
    """A BCP 47 tag for a code or a language name (``de-de`` → ``de-DE``, ``iw`` → ``he``,
    ``German``/``Deutsch`` → ``de``, ``cantonese`` → ``yue``); None when it is neither. Offline:
    names come from the ``language_data`` package."""
    text = text.strip()
    if not text or len(text) > 40:
        return None
    try:
        if re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*", text):
            tag = langcodes.standardize_tag(text.replace("_", "-"))
            if langcodes.tag_is_valid(tag) and langcodes.Language.get(tag).is_valid():
                return tag
        if not _NAME.fullmatch(text):
            return None  # names are words (``Brazilian Portuguese``, ``Deutsch``), nothing else
        return str(langcodes.find(text).simplify_script())
    except (LookupError, ValueError):
        return None


@functools.cache
def text_for(code: str | None) -> Text:
    """The :class:`Text` of the best shipped locale for a client's language tag (English when
    nothing matches)."""
    return Text(negotiate(code))


@functools.lru_cache(maxsize=512)
def negotiate(code: str | None) -> str:
    """Map a client tag (``de-DE``, ``pt-br``, ``zh-TW``, ``es-419``) to a shipped locale."""
    if not code:
        return SOURCE_LOCALE
    tag = code.strip().replace("-", "_")
    shipped = shipped_locales()
    by_lower = {c.lower(): c for c in shipped}
    if tag.lower() in by_lower:
        return by_lower[tag.lower()]
    language = tag.split("_", 1)[0].lower()
    if language in ("zh", "yue"):
        # Our only Chinese catalog is Traditional (Hong Kong); it serves every Chinese reader
        # better than English does.
        return _first(shipped, "zh_") or SOURCE_LOCALE
    return by_lower.get(language) or _first(shipped, language + "_") or SOURCE_LOCALE


def _first(shipped: tuple[str, ...], prefix: str) -> str | None:
    return next((c for c in shipped if c.lower().startswith(prefix.lower())), None)


ENGLISH = Text(SOURCE_LOCALE)
