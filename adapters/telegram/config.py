"""The ``telegram:`` config section (read without importing the Telegram library)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config.load import Config
from bot.config.reader import Section, positive

NAME = "telegram"


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """Telegram Bot API settings; no token means the adapter is not started."""

    token: str | None = None
    api_base: str = "https://api.telegram.org"
    max_download_bytes: int = 20 * 1024 * 1024
    max_messages: int = 3
    local_mode: bool = False


def read_config(t: Section) -> TelegramConfig:
    """Validate the ``telegram:`` section (every problem goes to the section's list)."""
    telegram = TelegramConfig(
        token=t.get("token", str, None),
        api_base=(t.get("api_base", str, "https://api.telegram.org") or "").rstrip("/"),
        max_download_bytes=t.get("max_download_bytes", int, 20 * 1024 * 1024) or 1,
        max_messages=t.get("max_messages", int, 3) or 3,
        local_mode=bool(t.get("local_mode", bool, False)),
    )
    positive(t, "max_download_bytes", telegram.max_download_bytes)
    t.finish()
    return telegram


def telegram_config(config: Config) -> TelegramConfig:
    """This platform's section of a loaded config (the defaults when it was not read)."""
    found = config.platforms.get(NAME)
    return found if isinstance(found, TelegramConfig) else TelegramConfig()
