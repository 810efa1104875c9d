"""The Discord plugin: voice messages and the "Transcribe" menu in, transcripts and voices out
(discord.py, imported only when a token is configured)."""

from __future__ import annotations

import re

from adapters.discord.config import NAME, read_config
from adapters.plugin import Platform

PLATFORM = Platform(
    name=NAME,
    token_env="DISCORD_BOT_TOKEN",
    read_config=read_config,
    # Three base64url parts joined by dots (user id, timestamp, HMAC).
    token_shape=re.compile(r"^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$"),
    token_hint="three dot-separated parts, from the developer portal's Bot page",
    adapter="adapters.discord.adapter:DiscordAdapter",
)
