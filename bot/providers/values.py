"""Lenient readers for fields of vendor JSON: a wrong type reads as "absent", never a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.model.speech import Segment


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


def segments_or_empty(raw: Any) -> tuple[Segment, ...]:
    """OpenAI-shaped transcript segments (``verbose_json``: text, start, end; ``diarized_json``
    adds ``speaker``), as NanoGPT's diarization block and OpenAI-compatible servers send them.
    Not a list: no segments; an item that is not an object is skipped."""
    if not isinstance(raw, list):
        return ()
    return tuple(
        Segment(
            text=str(item.get("text", "")).strip(),
            start=float_or_none(item.get("start")),
            end=float_or_none(item.get("end")),
            speaker=str_or_none(item.get("speaker")),
        )
        for item in raw
        if isinstance(item, Mapping)
    )
