"""Black box, ``voicebot run`` drained by SIGTERM: six synchronous transcriptions in flight finish
and are delivered once, none interrupted, none submitted twice (SQLite and PostgreSQL); a second
signal cuts the drain short; a Discord holder hands its shards over before its drain ends."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from bot.model.job import JobState
from bot.storage.sqlite import SqliteJobStore
from testkit.fakes.audio import make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeNanoGpt
from testkit.fakes.telegram import FakeTelegram
from testkit.process import healthz, start_voicebot_run, wait_line
from testkit.stress import (
    Tally,
    interrupted,
    once_each,
    send_voices,
    telegram_run_config,
    wait_all_answered,
)
from testkit.support import write_config

CHAT = 91


def replies_to(dc: FakeDiscord, message_id: object) -> list[dict[str, Any]]:
    """The bot's final replies (no placeholder) to the user's message ``message_id``."""
    return [
        m
        for m in dc.bot_messages()
        if (m.get("message_reference") or {}).get("message_id") == message_id
        and "…" not in m["content"]
    ]


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
async def test_drain_sigterm_lets_six_transcriptions_in_flight_finish_and_deliver_once(
    tmp_path: Path,
    tg_nano: tuple[FakeTelegram, FakeNanoGpt],
    request: pytest.FixtureRequest,
    target: str,
) -> None:
    tg, nano = tg_nano
    url = str(request.getfixturevalue("pg_url")) if target == "postgres" else None
    config = telegram_run_config(tmp_path, tg, nano, url, shutdown={"grace_seconds": 20})
    nano.sync_delay = 3.0  # NanoGPT's synchronous Whisper takes a few seconds to answer
    log, tally = tmp_path / "bot.log", Tally()
    proc = await start_voicebot_run(config, log)
    try:
        await tg.wait_held(timeout=30)
        await wait_line(log, "health: serving", timeout=10)
        send_voices(tg, tally, 6, CHAT)
        await nano.wait_for("transcribe", count=6, timeout=30)  # all six in flight, paid
        assert nano.submits["transcribe"] == 6 and not once_each(tg, tally).count(1)
        proc.send_signal(signal.SIGTERM)
        await wait_line(log, "draining: no new work taken", timeout=10)
        polls = tg.get_updates_count
        status, body = await healthz(log)
        assert status == 503 and body["status"] == "draining"
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        # The six were delivered before the process ended, and it took no more updates (one
        # last getUpdates confirms what was handled, without waiting for news).
        assert once_each(tg, tally) == [1] * 6
        assert tg.get_updates_count - polls <= 1
        assert "0 step(s) cut short" in log.read_text()
        proc = await start_voicebot_run(config, log)  # the restart finds nothing to redo
        await tg.wait_held(timeout=30)
        send_voices(tg, tally, 1, CHAT)
        await wait_all_answered(tg, tally, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert once_each(tg, tally) == [1] * 7
    assert interrupted(tg) == []
    assert nano.submits["transcribe"] == 7  # six before the restart, one after: none twice


async def test_drain_second_signal_cuts_it_short_and_releases_the_lease(
    tmp_path: Path, tg_nano: tuple[FakeTelegram, FakeNanoGpt]
) -> None:
    tg, nano = tg_nano
    config = telegram_run_config(tmp_path, tg, nano, None, shutdown={"grace_seconds": 20})
    nano.sync_delay = 60.0  # longer than any grace
    log, tally = tmp_path / "bot.log", Tally()
    proc = await start_voicebot_run(config, log)
    try:
        await tg.wait_held(timeout=30)
        send_voices(tg, tally, 1, CHAT)
        await nano.wait_for("transcribe", timeout=30)
        proc.send_signal(signal.SIGTERM)
        await wait_line(log, "draining: no new work taken", timeout=10)
        loop = asyncio.get_running_loop()
        began = loop.time()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
        took = loop.time() - began
    finally:
        nano.answer_now.set()  # the fake answers the abandoned request, so it can stop
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    said = log.read_text()
    assert took < 3.0, said
    assert "second signal" in said and "1 step(s) still in flight" in said
    store = await SqliteJobStore.open(tmp_path / "voicebot.sqlite3")
    try:
        (job,) = await store.recent(5)
        assert job.state is JobState.SUBMITTING and job.lease_owner is None  # free at once
    finally:
        await store.close()


async def test_drain_discord_holder_hands_its_shards_over_at_once_and_still_delivers(
    tmp_path: Path, pg_url: str
) -> None:
    async with FakeDiscord() as dc, FakeNanoGpt() as nano:
        nano.sync_delay = 4.0
        discord = {
            "token": dc.token,
            "api_base": dc.api_base,
            "gateway_url": dc.gateway_url,
            "message_content": True,
            "ready_timeout": 20,
        }
        config = write_config(tmp_path, nano_url=nano.url, discord=discord, storage={"url": pg_url})
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        procs = [await start_voicebot_run(config, logs[0])]
        try:
            await wait_line(logs[0], "discord: commands synced", timeout=30)
            procs.append(await start_voicebot_run(config, logs[1]))
            await wait_line(logs[1], "standing by", timeout=30)
            sent = await dc.send_voice_message(None, None, make_tone(1.0), 1.0)
            await nano.wait_for("transcribe", timeout=30)
            procs[0].send_signal(signal.SIGTERM)
            # The standby connects the shards at once, while the transcription is in flight
            # (in whichever process claimed it).
            await wait_line(logs[1], "taking over the gateway", timeout=5)
            assert await asyncio.wait_for(procs[0].wait(), 30) == 0
            # Sent by whichever process ran the transcription.
            replies = await dc.wait_for(lambda: replies_to(dc, sent["id"]), timeout=30)
            assert len(replies) == 1 and "Fake transcript" in replies[0]["content"]
            await wait_line(logs[1], "discord: commands synced", timeout=30)
            procs[1].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(procs[1].wait(), 30) == 0
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        assert nano.submits["transcribe"] == 1 and len(replies_to(dc, sent["id"])) == 1
