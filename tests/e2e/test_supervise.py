"""Platform faults at start and while running: named in one line, survived, reconnected."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from testkit.discord_bot import config_for
from testkit.fakes.audio import make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.process import BotProcess
from testkit.support import write_config

pytestmark = pytest.mark.timeout(90)
TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def log_shows(bot: BotProcess, text: str, times: int = 1, timeout: float = 30) -> None:
    """Until the bot's log has ``text`` ``times`` times (a file: nothing to wait on but time)."""
    for _ in range(int(timeout * 10)):
        if bot.log.count(text) >= times:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} not logged {times}x:\n{bot.log}")


async def test_run_telegram_unreachable_does_not_stop_discord(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    port = dead_port()
    async with FakeDiscord() as dc, FakeCantonese() as canto:
        discord: dict[str, Any] = {
            "token": dc.token,
            "api_base": dc.api_base,
            "gateway_url": dc.gateway_url,
            "message_content": True,
            "ready_timeout": 20,
        }
        config = write_config(
            tmp_path,
            nano_url=nano.url,
            canto_url=canto.url,
            discord=discord,
            stt={"model": "Elevenlabs-STT"},
            jobs={"deadline_seconds": 600, "max_poll_interval": 1},
            telegram={
                "token": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1",
                "api_base": f"http://127.0.0.1:{port}",
            },
        )
        bot = BotProcess(config, tmp_path / "bot.log")
        await bot.start()
        try:
            await dc.wait_for(lambda: dc.commands.get(None), timeout=30)
            await dc.send_voice_message(None, None, make_tone(1.5), 1.5)
            await dc.wait_for(
                lambda: [m for m in dc.bot_messages() if "how are you" in m["content"]],
                timeout=30,
            )
        finally:
            code = await bot.end(signal.SIGTERM)
        assert code == 0, bot.log
        failures = [line for line in bot.log.splitlines() if "telegram: start failed" in line]
        assert failures, bot.log
        assert f"cannot connect to 127.0.0.1:{port} (connection refused" in failures[0]
        assert "Traceback" not in bot.log


async def test_run_discord_gateway_parse_error_reconnects_and_sigterm_is_prompt(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    async with FakeDiscord() as dc, FakeCantonese() as canto:
        config = config_for(tmp_path, dc, nano, canto)
        bot = BotProcess(config, tmp_path / "bot.log")
        await bot.start()
        try:
            await dc.wait_for(lambda: dc.commands.get(None), timeout=30)
            # discord.py cannot parse this interaction: its gateway task dies with a KeyError.
            await dc.dispatch("INTERACTION_CREATE", {"type": 2})
            await log_shows(bot, "discord: connection lost (KeyError")
            await log_shows(bot, "discord adapter started", times=2)
            await dc.send_voice_message(None, None, make_tone(1.5), 1.5)
            await dc.wait_for(
                lambda: [m for m in dc.bot_messages() if "how are you" in m["content"]],
                timeout=30,
            )
        finally:
            began = time.monotonic()
            code = await bot.end(signal.SIGTERM, timeout=15)
            took = time.monotonic() - began
        assert code == 0, bot.log
        assert took < 10
        assert dc.token not in bot.log


async def test_run_discord_command_sync_failure_is_logged_and_bot_runs_on(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    async with FakeDiscord() as dc, FakeCantonese() as canto:
        config = config_for(tmp_path, dc, nano, canto)
        invalid = {
            "code": 50035,
            "message": "Invalid Form Body",
            "errors": {
                "0": {
                    "name": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_BAD_LENGTH",
                                "message": "Must be between 1 and 32 in length.",
                            }
                        ]
                    }
                }
            },
        }
        dc.fail("PUT", r"/applications/\d+/commands", 400, invalid, times=None)
        bot = BotProcess(config, tmp_path / "bot.log")
        await bot.start()
        try:
            await dc.send_voice_message(None, None, make_tone(1.5), 1.5)
            await dc.wait_for(
                lambda: [m for m in dc.bot_messages() if "how are you" in m["content"]],
                timeout=40,
            )
        finally:
            code = await bot.end(signal.SIGTERM)
        assert code == 0, bot.log
        assert "command sync failed (the bot runs on)" in bot.log
        assert "Traceback" not in bot.log


async def health_port(bot: BotProcess) -> int:
    await log_shows(bot, "health: serving http://127.0.0.1:")
    line = next(x for x in bot.log.splitlines() if "health: serving" in x)
    return int(line.split("http://127.0.0.1:")[1].split("/")[0])


async def test_run_healthz_and_metrics_report_a_platform_that_is_down(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    port = dead_port()
    async with FakeDiscord() as dc, FakeCantonese() as canto, aiohttp.ClientSession() as http:
        discord: dict[str, Any] = {
            "token": dc.token,
            "api_base": dc.api_base,
            "gateway_url": dc.gateway_url,
            "message_content": True,
            "ready_timeout": 20,
        }
        telegram = {"token": TG_TOKEN, "api_base": f"http://127.0.0.1:{port}"}
        config = write_config(
            tmp_path,
            nano_url=nano.url,
            canto_url=canto.url,
            discord=discord,
            telegram=telegram,
            stt={"model": "Elevenlabs-STT"},
            jobs={"deadline_seconds": 600, "max_poll_interval": 1},
        )
        bot = BotProcess(config, tmp_path / "bot.log")
        await bot.start()
        try:
            base = f"http://127.0.0.1:{await health_port(bot)}"
            await log_shows(bot, "discord adapter started")
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 503
                body = await resp.json()
            assert body["adapters"]["discord"]["connected"] is True
            assert body["adapters"]["telegram"]["state"] == "down"
            assert f"127.0.0.1:{port}" in body["adapters"]["telegram"]["error"]
            assert body["database"] == "ok" and body["poller"] == "alive"
            await dc.send_voice_message(None, None, make_tone(1.5), 1.5)
            await dc.wait_for(
                lambda: [m for m in dc.bot_messages() if "how are you" in m["content"]],
                timeout=30,
            )
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                text = await resp.text()
        finally:
            code = await bot.end(signal.SIGTERM)
        assert code == 0, bot.log
    assert 'voicebot_jobs{kind="stt",provider="nanogpt",state="completed"} 1.0' in text
    assert 'voicebot_adapter_connected{platform="telegram"} 0.0' in text
    assert 'voicebot_adapter_connected{platform="discord"} 1.0' in text
    submit = 'voicebot_provider_request_seconds_count{call="submit",kind="stt",provider="nanogpt"}'
    assert f"{submit} 1.0" in text
    assert 'voicebot_polls_per_job_count{kind="stt",provider="nanogpt"} 1.0' in text
    assert "voicebot_event_loop_lag_seconds_count" in text
    assert "voicebot_queue_depth 0.0" in text
    assert "voicebot_delivery_failures_total" in text


async def test_run_sigterm_while_a_platform_hangs_in_start_exits_within_10s(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    handshaking = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the handshake's first byte: the bot is inside it now
        handshaking.set()
        await reader.read()  # accept, then never answer the websocket handshake

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    hang = server.sockets[0].getsockname()[1]
    try:
        async with FakeDiscord() as dc, FakeCantonese() as canto:
            config = config_for(tmp_path, dc, nano, canto)
            text = config.read_text().replace(dc.gateway_url, f"ws://127.0.0.1:{hang}")
            config.write_text(text)
            bot = BotProcess(config, tmp_path / "bot.log")
            await bot.start()
            try:
                await log_shows(bot, "logging in using static token")
                # Inside the gateway handshake that never ends (recorded by the silent server).
                await asyncio.wait_for(handshaking.wait(), 30)
            finally:
                began = time.monotonic()
                code = await bot.end(signal.SIGTERM, timeout=15)
                took = time.monotonic() - began
            assert code == 0, bot.log
            assert took < 10
    finally:
        server.close()
