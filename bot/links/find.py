"""The http(s) links in a chat message's text."""

from __future__ import annotations

import re

_LINK = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}>'\"*_~"


def find_links(text: str) -> list[str]:
    """The http(s) URLs in ``text``, in order, each once; trailing punctuation that ends a
    sentence (or closes a bracket the link did not open) is not part of the link."""
    found: list[str] = []
    for match in _LINK.finditer(text or ""):
        link = match.group(0)
        while link and link[-1] in _TRAILING:
            if link[-1] == ")" and link.count("(") >= link.count(")"):
                break  # https://en.wikipedia.org/wiki/Foo_(bar)
            link = link[:-1]
        if "://" in link and link.split("://", 1)[1] and link not in found:
            found.append(link)
    return found
