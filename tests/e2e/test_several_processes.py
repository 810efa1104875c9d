"""Black box, several ``voicebot run`` processes: Telegram leader and Discord shard failover on
PostgreSQL (a holder lets go when its lock's connection drops), and a second process on one
SQLite file refused with a clear message."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg

from testkit.discord_bot import config_for as discord_config
from testkit.fakes.audio import make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.fakes.telegram import FakeTelegram
from testkit.pgcluster import PgCluster
from testkit.process import healthz, start_voicebot_run, wait_line
from testkit.stress import Tally, send_voices, telegram_run_config
from testkit.stress import final_replies as _finals
from testkit.stress import wait_all_answered as _wait_all_answered
from testkit.support import until

CHAT = 77


async def test_several_processes_telegram_standby_takes_over_without_loss_or_repeat(
    tmp_path: Path, tg_nano: tuple[FakeTelegram, FakeNanoGpt], pg_url: str
) -> None:
    tg, nano = tg_nano
    config = telegram_run_config(tmp_path, tg, nano, pg_url)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [await start_voicebot_run(config, log) for log in logs]
    tally = Tally()
    try:
        await tg.wait_held(timeout=30)

        def said(text: str) -> bool:
            return any(log.exists() and text in log.read_text() for log in logs)

        await until(lambda: said("polling as") and said("standing by"), 30)  # both settled
        polling = [i for i, log in enumerate(logs) if "polling as" in log.read_text()]
        assert len(polling) == 1, "exactly one process receives"
        leader, standby = polling[0], 1 - polling[0]
        # A standby is healthy, and says it stands by (it delivers, another one receives).
        states = [(await healthz(log))[1]["adapters"]["telegram"]["state"] for log in logs]
        assert states[leader] == "connected" and states[standby] == "standby"
        assert (await healthz(logs[standby]))[0] == 200
        send_voices(tg, tally, 3, CHAT)
        await _wait_all_answered(tg, tally, timeout=30)
        nano.processing_time = lambda kind, model, info: 0.5
        send_voices(tg, tally, 2, CHAT)  # arriving as the leader dies: fetched or not, never lost
        procs[leader].kill()
        assert await asyncio.wait_for(procs[leader].wait(), 10) == -signal.SIGKILL
        takeover = await wait_line(logs[standby], "polling as", timeout=15)
        print(f"standby took over receiving after {takeover:.1f} s")
        assert takeover <= 10.0
        send_voices(tg, tally, 3, CHAT)
        await _wait_all_answered(tg, tally, timeout=40)
        status, body = await healthz(logs[standby])
        assert status == 200 and body["adapters"]["telegram"]["state"] == "connected"
        procs[standby].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(procs[standby].wait(), 15) == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finals = _finals(tg)
    counts = [len(finals.get((t.chat, t.message_id), set())) for t in tally.triggers]
    assert counts == [1] * len(tally.triggers), counts  # none lost, none answered twice
    uploads = len(nano.requests_to("transcribe"))
    assert uploads == len(tally.triggers)  # no update processed (and paid) twice


async def test_several_processes_second_run_on_one_sqlite_file_is_refused(
    tmp_path: Path, tg_nano: tuple[FakeTelegram, FakeNanoGpt]
) -> None:
    tg, nano = tg_nano
    config = telegram_run_config(tmp_path, tg, nano, None)
    first = await start_voicebot_run(config, tmp_path / "first.log")
    try:
        await tg.wait_held(timeout=30)
        second = await start_voicebot_run(config, tmp_path / "second.log")
        assert await asyncio.wait_for(second.wait(), 30) == 1
        said = (tmp_path / "second.log").read_text()
        assert str(tmp_path / "voicebot.sqlite3") in said and f"pid {first.pid}" in said
        assert first.returncode is None  # the running one is untouched
    finally:
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 15) == 0


async def test_several_processes_discord_one_gateway_and_a_standby_takes_over(
    tmp_path: Path, pg_url: str
) -> None:
    async with FakeDiscord() as dc, FakeNanoGpt() as nano, FakeCantonese() as canto:
        config = discord_config(tmp_path, dc, nano, canto)
        text = config.read_text().replace(
            "storage:\n", f"storage:\n  url: {pg_url}\n", 1
        )  # both processes on one PostgreSQL
        config.write_text(text)
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        procs = [await start_voicebot_run(config, logs[0])]
        await dc.wait_for(lambda: dc.identify_payloads, timeout=30)
        procs.append(await start_voicebot_run(config, logs[1]))
        try:
            await wait_line(logs[1], "standing by", timeout=30)
            assert len(dc.identify_payloads) == 1  # one gateway session for these shards
            status, body = await healthz(logs[1])
            assert status == 200 and body["adapters"]["discord"]["state"] == "standby"
            await asyncio.sleep(3.0)  # a standby stays one: not taken for a lost connection
            assert "connection lost" not in logs[1].read_text()
            assert logs[1].read_text().count("another process has these shards") == 1
            procs[0].kill()
            assert await asyncio.wait_for(procs[0].wait(), 10) == -signal.SIGKILL
            takeover = await wait_line(logs[1], "taking over the gateway", timeout=15)
            print(f"discord standby took over the gateway after {takeover:.1f} s")
            assert takeover <= 10.0
            await wait_line(logs[1], "discord: connected as", timeout=30)
            # Connected is reported once the take-over is complete: after the (localized) command
            # sync that follows the "connected as" line.
            await wait_line(logs[1], "discord: commands synced", timeout=30)
            status, body = await healthz(logs[1])
            assert status == 200 and body["adapters"]["discord"]["state"] == "connected"
            sent = await dc.send_voice_message(None, None, make_tone(1.0), 1.0)
            replies = await dc.wait_for(
                lambda: [
                    m
                    for m in dc.bot_messages()
                    if (m.get("message_reference") or {}).get("message_id") == sent["id"]
                    and "…" not in m["content"]
                ],
                timeout=30,
            )
            assert len(replies) == 1
            procs[1].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(procs[1].wait(), 15) == 0
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        assert nano.submits["transcribe"] == 1


async def test_several_processes_discord_holder_that_loses_its_shard_lock_reconnects(
    tmp_path: Path, pg_url: str
) -> None:
    async with FakeDiscord() as dc, FakeNanoGpt() as nano, FakeCantonese() as canto:
        config = discord_config(tmp_path, dc, nano, canto)
        text = config.read_text().replace("storage:\n", f"storage:\n  url: {pg_url}\n", 1)
        config.write_text(text)
        log = tmp_path / "bot.log"
        proc = await start_voicebot_run(config, log)
        try:
            await wait_line(log, "discord: connected as", timeout=30)
            # The server ends the lock's connection (a network cut, a failover): the lock is
            # free for another process, so this one must stop receiving, then come back.
            conn = await asyncpg.connect(pg_url)
            try:
                held = await conn.fetch(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                )
                assert len(held) == 1
                await conn.execute("SELECT pg_terminate_backend($1)", held[0]["pid"])
            finally:
                await conn.close()
            await wait_line(log, "lost the lock on these shards", timeout=20)
            for _ in range(300):  # reconnected through the supervisor, not restarted
                if log.read_text().count("discord adapter started") >= 2:
                    break
                await asyncio.sleep(0.1)
            assert len(dc.identify_payloads) == 2, log.read_text()
            assert proc.returncode is None
            status, body = await healthz(log)
            assert status == 200 and body["adapters"]["discord"]["state"] == "connected"
            sent = await dc.send_voice_message(None, None, make_tone(1.0), 1.0)
            await dc.wait_for(
                lambda: [
                    m
                    for m in dc.bot_messages()
                    if (m.get("message_reference") or {}).get("message_id") == sent["id"]
                    and "…" not in m["content"]
                ],
                timeout=30,
            )
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_several_processes_discord_holder_steps_down_when_the_database_restarts(
    tmp_path: Path, pg_cluster: PgCluster, pg_url: str
) -> None:
    """A PostgreSQL restart drops the shard lock's connection: the holder disconnects its
    gateway before the standby can take the lock, so no two gateways receive these shards."""
    async with FakeDiscord() as dc, FakeNanoGpt() as nano, FakeCantonese() as canto:
        config = discord_config(tmp_path, dc, nano, canto)
        text = config.read_text().replace("storage:\n", f"storage:\n  url: {pg_url}\n", 1)
        config.write_text(text)
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        procs = [await start_voicebot_run(config, logs[0])]
        await wait_line(logs[0], "discord: connected as", timeout=30)
        procs.append(await start_voicebot_run(config, logs[1]))
        most = 0
        watching = True

        async def watch() -> None:  # live gateway sessions, sampled every 5 ms
            nonlocal most
            while watching:
                most = max(most, len(dc.gateway.live_sessions))
                await asyncio.sleep(0.005)

        try:
            await wait_line(logs[1], "standing by", timeout=30)
            watcher = asyncio.create_task(watch())
            loop = asyncio.get_running_loop()
            began = loop.time()
            await asyncio.to_thread(pg_cluster.restart)
            restarted = loop.time() - began
            await dc.wait_for(lambda: len(dc.identify_payloads) == 2, timeout=30)
            taken = loop.time() - began
            await asyncio.sleep(1.0)  # the loser of the lock stays off the gateway
            watching = False
            await watcher
            assert most == 1, f"{most} gateway sessions were live at once"
            assert len(dc.gateway.live_sessions) == 1 and len(dc.identify_payloads) == 2
            await wait_line(logs[0], "lost the lock on these shards", timeout=5)
            print(
                f"PostgreSQL restart took {restarted:.2f} s; the shards were connected again "
                f"{taken:.2f} s after it began, never by two processes at once"
            )
            sent = await dc.send_voice_message(None, None, make_tone(1.0), 1.0)
            replies = await dc.wait_for(
                lambda: [
                    m
                    for m in dc.bot_messages()
                    if (m.get("message_reference") or {}).get("message_id") == sent["id"]
                    and "…" not in m["content"]
                ],
                timeout=30,
            )
            assert len(replies) == 1
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            watching = False
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        # Both processes have exited (codes checked): no late duplicate can land after this.
        assert nano.submits["transcribe"] == 1
