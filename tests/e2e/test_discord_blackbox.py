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
