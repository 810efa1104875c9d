"""Lenient readers for fields of vendor JSON: a wrong type reads as "absent", never a crash."""

from __future__ import annotations

from typing import Any


def float_or_none(value: Any) -> float | None:
    """A number (or numeric string) as float; booleans and anything else are None."""
    if isinstance(value, bool):
        return None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def int_or_none(value: Any) -> int | None:
    """As :func:`float_or_none`, truncated to int."""
    number = float_or_none(value)
    return int(number) if number is not None else None


def str_or_none(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None
