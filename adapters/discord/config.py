"""The ``discord:`` config section (read without importing discord.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.config.load import Config
from bot.config.reader import MISSING, Section, positive

NAME = "discord"


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    """Discord settings; no token means the adapter is not started."""

    token: str | None = None
    api_base: str | None = None
    gateway_url: str | None = None
    message_content: bool = False
    guild_ids: tuple[int, ...] = ()
    max_messages: int = 3
    max_download_bytes: int = 25 * 1024 * 1024
    ready_timeout: float = 60.0
    # Several processes: each connects the gateway shards in shard_ids (of shard_count in all).
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None


def read_config(d: Section) -> DiscordConfig:
    """Validate the ``discord:`` section (every problem goes to the section's list)."""
    ids = d.raw("guild_ids")
    guild_ids: tuple[int, ...] = ()
    if ids is not MISSING and ids is not None:
        if isinstance(ids, list) and all(str(i).isdigit() for i in ids):
            guild_ids = tuple(int(i) for i in ids)
        else:
            d.problems.append(f"{d._key('guild_ids')}: expected a list of numeric ids, got {ids!r}")
    discord = DiscordConfig(
        token=d.get("token", str, None),
        api_base=d.get("api_base", str, None),
        gateway_url=d.get("gateway_url", str, None),
        message_content=bool(d.get("message_content", bool, False)),
        guild_ids=guild_ids,
        max_messages=d.get("max_messages", int, 3) or 3,
        max_download_bytes=d.get("max_download_bytes", int, 25 * 1024 * 1024) or 1,
        ready_timeout=d.get("ready_timeout", float, 60.0) or 60.0,
        **_read_shards(d),
    )
    for key in ("max_messages", "max_download_bytes", "ready_timeout"):
        positive(d, key, getattr(discord, key))
    d.finish()
    return discord


def _read_shards(d: Section) -> dict[str, Any]:
    """``shard_count`` and ``shard_ids`` (each id below the count); absent: one process, all."""
    count = d.get("shard_count", int, None)
    raw = d.raw("shard_ids")
    if raw is MISSING or raw is None:
        return {"shard_count": count, "shard_ids": None}
    if not (isinstance(raw, list) and raw and all(isinstance(i, int) for i in raw)):
        d.problems.append(f"{d._key('shard_ids')}: expected a list of shard numbers, got {raw!r}")
    elif count is None or not all(0 <= i < count for i in raw):
        d.problems.append(f"{d._key('shard_ids')}: each must be in 0..shard_count-1")
    else:
        return {"shard_count": count, "shard_ids": tuple(raw)}
    return {"shard_count": count, "shard_ids": None}


def discord_config(config: Config) -> DiscordConfig:
    """This platform's section of a loaded config (the defaults when it was not read)."""
    found = config.platforms.get(NAME)
    return found if isinstance(found, DiscordConfig) else DiscordConfig()
