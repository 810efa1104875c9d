"""Catalog checks: what the source code marks, every shipped catalog translates, faithfully."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.text.catalog import LOCALES_DIR, po_path, shipped_locales

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"gettext": None, "ngettext": (1, 2), "msg": None, "msgn": (1, 2)}
_FIELD = re.compile(r"\{([^{}]*)\}")
_TAG = re.compile(r"</?[a-z]+>")


def source_messages() -> set[str]:
    """Every msgid marked in ``bot/`` and ``adapters/`` (what ``pybabel extract`` finds)."""
    found: set[str] = set()
    for folder in ("bot", "adapters"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder,
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
        ):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


def placeholders(text: str) -> list[str]:
    """The ``{name}`` fields and HTML tags of a message, sorted (order may change)."""
    return sorted(_FIELD.findall(text) + _TAG.findall(text))


def catalog(locale: str) -> Catalog:
    """The parsed ``.po`` of ``locale``."""
    with po_path(locale).open("rb") as fp:
        return read_po(fp, locale=locale)


def problems() -> list[str]:
    """Every missing, fuzzy, untranslated or unfaithful entry of every shipped catalog, and
    every msgid the template lacks."""
    wanted = source_messages()
    out: list[str] = []
    with (LOCALES_DIR / "voicebot.pot").open("rb") as fp:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fp) if m.id}
    out += [f"voicebot.pot: missing {m!r} (run pybabel extract)" for m in wanted - template]
    for locale in shipped_locales():
        out += list(_locale_problems(locale, wanted))
    return out


def _locale_problems(locale: str, wanted: set[str]) -> Iterator[str]:
    cat = catalog(locale)
    seen: set[str] = set()
    expected = cat.num_plurals
    for m in cat:
        if not m.id:
            continue
        key = m.id if isinstance(m.id, str) else m.id[0]
        seen.add(key)
        if m.fuzzy:
            yield f"{locale}: fuzzy {key!r}"
        raw = m.string if isinstance(m.string, tuple) else (m.string,)
        strings = [str(t or "") for t in raw]
        if isinstance(m.id, tuple) and len(strings) != expected:
            yield f"{locale}: {key!r} has {len(strings)} plural forms, not {expected}"
        if not all(strings):
            yield f"{locale}: untranslated {key!r}"
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        for text in strings:
            # a plural form may leave {n} out ("одна" for 1), nothing else
            want = [p for p in placeholders(ids[-1]) if not (p == "n" and "{n}" not in text)]
            if placeholders(text) != want:
                yield f"{locale}: placeholders differ in {key!r}: {text!r}"
    for missing in sorted(wanted - seen):
        yield f"{locale}: missing {missing!r}"
