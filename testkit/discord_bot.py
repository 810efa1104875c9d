"""The real Discord adapter in-process: real discord.py against FakeDiscord, a real Core against
the fake providers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.adapter import DiscordAdapter
from bot.app.core import Core
from testkit.fakes.discord import FakeDiscord, RecordedRequest
from testkit.fakes.discord_world import JSON
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import make_config, write_config


@dataclass
class Running:
    """A started adapter with its core, the fakes, and the poller task."""

    dc: FakeDiscord
    nano: FakeNanoGpt
    core: Core
    adapter: DiscordAdapter

    def bot_texts(self, channel_id: int | None = None) -> list[str]:
        """Contents of the bot's live messages in a channel (default: the text channel)."""
        cid = channel_id or self.dc.ids.text_channel
        return [m["content"] for m in self.dc.bot_messages(cid)]

    async def bot_message(self, needle: str, channel_id: int | None = None) -> JSON:
        """Wait for a live bot message in the channel whose content contains ``needle``."""
        cid = channel_id or self.dc.ids.text_channel

        def found() -> JSON | None:
            hits = [m for m in self.dc.bot_messages(cid) if needle in m["content"]]
            return hits[0] if hits else None

        return await self.dc.wait_for(found)


def discord_section(dc: FakeDiscord, **extra: Any) -> dict[str, Any]:
    """The config's discord section pointing at the fake."""
    return {
        "token": dc.token,
        "api_base": dc.api_base,
        "gateway_url": dc.gateway_url,
        "message_content": True,
        **extra,
    }


@contextlib.asynccontextmanager
async def running_bot(
    tmp_path: Path,
    dc: FakeDiscord,
    nano: FakeNanoGpt,
    canto: FakeCantonese,
    *,
    discord: dict[str, Any] | None = None,
    stt: dict[str, Any] | None = None,
    access: dict[str, Any] | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[Running]:
    """Core.open + DiscordAdapter.start + poller.start; everything undone on exit."""
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    sections: dict[str, dict[str, Any]] = {
        "discord": discord_section(dc, **(discord or {})),
        "jobs": {"deadline_seconds": 600, "max_poll_interval": 1},
    }
    if stt:
        sections["stt"] = stt
    if access:
        sections["access"] = access
    sections.update(extra or {})
    config = make_config(tmp_path, nano_url=nano.url, canto_url=canto.url, **sections)
    core = await Core.open(config)
    adapter = DiscordAdapter(core, guild_ready_timeout=0.05)
    core.worker.register("discord", adapter)
    try:
        await adapter.start()
        core.poller.start()
        yield Running(dc, nano, core, adapter)
    finally:
        await adapter.stop()
        await core.poller.stop(timeout=2)
        await core.close()
        assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)


def message_writes(dc: FakeDiscord) -> list[RecordedRequest]:
    """Every request by which the bot created or edited a message (channel or interaction)."""
    writes = dc.find_requests("POST", r"/channels/\d+/messages")
    writes += dc.find_requests("PATCH", r"/channels/\d+/messages/\d+")
    writes += dc.find_requests("*", r"/webhooks/\d+/[^/]+(/messages/.+)?")
    return [r for r in writes if r.method in ("POST", "PATCH")]


def config_for(tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese) -> Path:
    discord: dict[str, Any] = {
        "token": dc.token,
        "api_base": dc.api_base,
        "gateway_url": dc.gateway_url,
        "message_content": True,
        "ready_timeout": 20,
    }
    return write_config(
        tmp_path,
        nano_url=nano.url,
        canto_url=canto.url,
        discord=discord,
        stt={"model": "Elevenlabs-STT"},
        jobs={"deadline_seconds": 600, "max_poll_interval": 1},
    )
