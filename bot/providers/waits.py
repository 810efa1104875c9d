"""How long a provider asks us to wait: ``Retry-After``, or OpenAI-style rate-limit resets."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def retry_after(headers: Mapping[str, str]) -> float | None:
    """How long the provider asked us to wait: ``Retry-After``, else the OpenAI-style
    ``x-ratelimit-reset-requests`` / ``-tokens`` of whichever budget is used up."""
    explicit = _retry_after_header(headers.get("Retry-After"))
    if explicit is not None:
        return explicit
    waits = []
    for budget in ("requests", "tokens"):
        reset = _duration(headers.get(f"x-ratelimit-reset-{budget}"))
        if reset is not None and headers.get(f"x-ratelimit-remaining-{budget}", "0") == "0":
            waits.append(reset)
    return max(waits) if waits else None


def _duration(value: str | None) -> float | None:
    """Parse a Go-style duration as OpenAI and Groq send it: ``12ms``, ``1s``, ``6m0s``."""
    if not value:
        return None
    value = value.strip()
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        try:
            return max(0.0, float(value))  # a bare number of seconds
        except ValueError:
            return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def _retry_after_header(value: str | None) -> float | None:
    """Parse ``Retry-After``: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
