"""The Telegram plugin: python-telegram-bot, imported only when a token is configured."""

from __future__ import annotations

import re

from adapters.plugin import Platform
from adapters.telegram.config import NAME, read_config

PLATFORM = Platform(
    name=NAME,
    token_env="TELEGRAM_BOT_TOKEN",
    read_config=read_config,
    # "<bot id>:<35-character secret>", as BotFather gives it.
    token_shape=re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$"),
    token_hint="expected 123456789:ABC…, as @BotFather gives it",
    adapter="adapters.telegram.adapter:TelegramAdapter",
)
