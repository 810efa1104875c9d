"""DiscordAdapter.quiesce on the fake Discord: the gateway sessions close and stay closed (no
reconnect by discord.py), and a reply in flight still goes out over REST (the shard lock handed
to a standby on PostgreSQL: tests/e2e/test_drain.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit.discord_bot import running_bot
from testkit.fakes.audio import make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("discord", "sessions"), [({}, 1), ({"shard_count": 2}, 2)], ids=["one", "sharded"]
)
async def test_discord_quiesce_leaves_the_gateway_and_still_delivers(
    tmp_path: Path,
    dc: FakeDiscord,
    nano: FakeNanoGpt,
    canto: FakeCantonese,
    discord: dict[str, Any],
    sessions: int,
) -> None:
    nano.sync_delay = 1.0
    async with running_bot(tmp_path, dc, nano, canto, discord=discord) as bot:
        await dc.wait_for(lambda: len(dc.gateway.live_sessions) == sessions)
        identified = len(dc.identify_payloads)
        sent = await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, make_tone(1.0), 1.0)
        await nano.wait_for("transcribe", timeout=10)  # in flight
        await bot.adapter.quiesce()
        await dc.wait_for(lambda: not dc.gateway.live_sessions)
        reply = await bot.bot_message("Fake transcript")
        assert reply["message_reference"]["message_id"] == sent["id"]
        assert not dc.gateway.live_sessions and len(dc.identify_payloads) == identified
