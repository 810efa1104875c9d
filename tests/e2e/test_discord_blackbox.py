"""Black-box: ``voicebot run`` as a subprocess against the fake Discord, killed and restarted."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from testkit.discord_bot import config_for
from testkit.fakes.audio import make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.process import BotProcess

pytestmark = pytest.mark.timeout(60)


async def test_discord_run_killed_mid_job_delivers_exactly_once_after_restart(
    tmp_path: Path, dc_nano_canto: tuple[FakeDiscord, FakeNanoGpt, FakeCantonese]
) -> None:
    dc, nano, canto = dc_nano_canto
    config = config_for(tmp_path, dc, nano, canto)
    nano.processing_delay = 3600.0  # pending at the provider until we say otherwise
    nano.polls_to_complete = 1
    first = BotProcess(config, tmp_path / "first.log")
    await first.start()
    try:
        await dc.wait_for(lambda: dc.commands.get(None), timeout=20)
        sent = await dc.send_voice_message(None, None, make_tone(2.0), 2.0)
        # A status poll proves the provider's ticket is stored: the job is SUBMITTED.
        await nano.wait_for("transcribe/status", timeout=15)
    finally:
        assert await first.end(signal.SIGKILL) == -signal.SIGKILL
    assert nano.submits["transcribe"] == 1
    nano.processing_delay = 0.0

    second = BotProcess(config, tmp_path / "second.log")
    await second.start()
    try:
        replies = await dc.wait_for(
            lambda: [m for m in dc.bot_messages() if "how are you" in m["content"]], timeout=20
        )
    finally:
        started = time.monotonic()
        code = await second.end(signal.SIGTERM)
        stopped_in = time.monotonic() - started
    assert code == 0, second.log
    assert stopped_in < 5
    assert len(dc.bot_messages(dc.ids.text_channel)) == 1  # the placeholder became the reply
    assert replies[0]["message_reference"]["message_id"] == sent["id"]
    assert nano.submits["transcribe"] == 1
    for log in (first.log, second.log):
        assert dc.token not in log
    assert "discord adapter started" in second.log


async def test_discord_user_installed_transcribe_survives_a_kill_and_arrives_by_dm(
    tmp_path: Path, dc_nano_canto: tuple[FakeDiscord, FakeNanoGpt, FakeCantonese]
) -> None:
    """A user-installed Transcribe in a server that never invited the bot; the process dies and
    the 15-minute token runs out meanwhile: the restarted bot sends the transcript by DM, once."""
    dc, nano, canto = dc_nano_canto
    config = config_for(tmp_path, dc, nano, canto)
    nano.processing_delay = 3600.0
    nano.polls_to_complete = 1
    first = BotProcess(config, tmp_path / "first.log")
    await first.start()
    try:
        await dc.wait_for(lambda: dc.commands.get(None), timeout=20)
        target = await dc.send_voice_message(
            dc.ids.foreign_channel, dc.ids.owner, make_tone(2.0), 2.0
        )
        record = dc.interaction(await dc.send_message_command("Transcribe", target))
        await nano.wait_for("transcribe/status", timeout=15)
    finally:
        assert await first.end(signal.SIGKILL) == -signal.SIGKILL
    assert record.callbacks == [{"type": 5, "data": {"flags": 64}}]
    dc.expire_token(record.token)
    nano.processing_delay = 0.0

    second = BotProcess(config, tmp_path / "second.log")
    await second.start()
    dm = dc.world.add_dm_channel(dc.ids.member)
    try:
        await dc.wait_for(
            lambda: [m for m in dc.bot_messages(dm) if "how are you" in m["content"]], timeout=20
        )
    finally:
        assert await second.end(signal.SIGTERM) == 0, second.log
    [reply] = dc.bot_messages(dm)  # once: the reason, then the transcript
    assert reply["content"].index("15 minutes") < reply["content"].index("how are you")
    assert nano.submits["transcribe"] == 1
    assert not [r for r in dc.requests if f"/channels/{dc.ids.foreign_channel}" in r.path]
