"""Every user-facing chat sentence goes through here: gettext catalogs + Babel formatting."""

from __future__ import annotations

from bot.text.catalog import shipped_locales
from bot.text.translator import (
    ENGLISH,
    Duration,
    Language,
    Msg,
    Size,
    Text,
    decode,
    encode,
    msg,
    msgn,
    negotiate,
    text_for,
)

__all__ = [
    "ENGLISH",
    "Duration",
    "Language",
    "Msg",
    "Size",
    "Text",
    "decode",
    "encode",
    "msg",
    "msgn",
    "negotiate",
    "shipped_locales",
    "text_for",
]
