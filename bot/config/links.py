"""The ``links:`` section: whether links are fetched, which networks and domains, how much."""

from __future__ import annotations

import ipaddress
import re

from bot.config.reader import MISSING, Section, positive
from bot.links import LinkSettings

LinksConfig = LinkSettings
"""``config.links``: the fetcher's settings, read from YAML by :func:`read_links`."""

_DOMAIN = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
_MEGABYTE = 1024 * 1024


def read_links(root: Section) -> LinkSettings:
    """``links:``; every problem is appended to the section's list."""
    sec = root.section("links")
    base = LinkSettings()
    megabytes = sec.get("max_megabytes", float, base.max_bytes / _MEGABYTE)
    settings = LinkSettings(
        enabled=bool(sec.get("enabled", bool, True)),
        allow_private_networks=bool(sec.get("allow_private_networks", bool, False)),
        allowed_networks=_networks(sec),
        allowed_domains=_domains(sec),
        timeout_seconds=sec.get("timeout_seconds", float, base.timeout_seconds) or 0.0,
        download_timeout_seconds=sec.get(
            "download_timeout_seconds", float, base.download_timeout_seconds
        )
        or 0.0,
        max_bytes=int((megabytes or 0) * _MEGABYTE),
    )
    for key in ("timeout_seconds", "download_timeout_seconds"):
        positive(sec, key, getattr(settings, key))
    positive(sec, "max_megabytes", megabytes or 0)
    sec.finish()
    return settings


def _items(sec: Section, key: str) -> list[str]:
    raw = sec.raw(key)
    if raw is MISSING or raw is None:
        return []
    if not isinstance(raw, list):
        sec.problems.append(f"{sec._key(key)}: expected a list, got {raw!r}")
        return []
    return [str(item).strip() for item in raw]


def _networks(sec: Section) -> tuple[str, ...]:
    kept: list[str] = []
    for text in _items(sec, "allowed_networks"):
        try:
            kept.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            sec.problems.append(
                f"{sec._key('allowed_networks')}: {text!r} is not a network "
                "(an address or CIDR such as 192.168.1.0/24 or fd00::/8)"
            )
    return tuple(kept)


def _domains(sec: Section) -> tuple[str, ...]:
    kept: list[str] = []
    for text in _items(sec, "allowed_domains"):
        domain = text.lower().removeprefix("*.").strip(".")
        if not _DOMAIN.match(domain):
            sec.problems.append(
                f"{sec._key('allowed_domains')}: {text!r} is not a domain (e.g. example.com; "
                "its subdomains are included)"
            )
            continue
        kept.append(domain)
    return tuple(kept)
