"""Black-box: ``voicebot run`` as a subprocess against the fake Discord, killed and restarted."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import start_voicebot_run
from tests.fakes.audio import make_tone
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeCantonese, FakeNanoGpt
from tests.support import write_config

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeDiscord, FakeNanoGpt, FakeCantonese]]:
    async with FakeDiscord() as dc, FakeNanoGpt() as nano, FakeCantonese() as canto:
        yield dc, nano, canto


class BotProcess:
    """``python -m adapters.cli --config X run`` with its log in a file (a pipe could fill up)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log_path = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await start_voicebot_run(self.config, self.log_path)

    async def end(self, sig: int, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        return code

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


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


async def test_discord_run_killed_mid_job_delivers_exactly_once_after_restart(
    tmp_path: Path, fakes: tuple[FakeDiscord, FakeNanoGpt, FakeCantonese]
) -> None:
    dc, nano, canto = fakes
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
