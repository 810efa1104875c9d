"""Load the shipped gettext catalogs: ``.po`` compiled in memory with Babel at first use."""

from __future__ import annotations

import functools
import gettext
import io
import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

_LOGGER = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "voicebot"
SOURCE_LOCALE = "en"

# The shipped catalogs are ``.po`` files only (package data). Compiling them here, once per
# process and locale, instead of shipping ``.mo`` files means there is no build step that an
# editable install (``pip install -e .``) could skip, nothing generated to commit or to go stale,
# and no cache directory that must be writable; it costs a few milliseconds per locale.


def po_path(locale: str) -> Path:
    """Where the catalog of ``locale`` (``de``, ``pt_BR``, ``zh_Hant_HK``) lives."""
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def shipped_locales() -> tuple[str, ...]:
    """Every locale with a catalog, the source language first."""
    found = sorted(p.parent.parent.name for p in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return (SOURCE_LOCALE, *(code for code in found if code != SOURCE_LOCALE))


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalog of ``locale``; the source strings when there is none."""
    path = po_path(locale)
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as fp:
        catalog = read_po(fp, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)  # a fuzzy entry is a guess: never shown
    buffer.seek(0)
    _LOGGER.debug("loaded %d messages for %s", len(catalog), locale)
    return Translations(buffer, domain=DOMAIN)
