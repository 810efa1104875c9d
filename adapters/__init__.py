"""Platform adapters (Telegram, Discord): the only place platform types live."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app.core import ChatAdapter, Core


def configured_adapters(core: Core) -> list[ChatAdapter]:
    """One adapter per platform that has a token; each library is imported only when used."""
    adapters: list[ChatAdapter] = []
    if core.config.telegram.token:
        from adapters.telegram.adapter import TelegramAdapter

        adapters.append(TelegramAdapter(core))
    if core.config.discord.token:
        from adapters.discord.adapter import DiscordAdapter

        adapters.append(DiscordAdapter(core))
    return adapters
