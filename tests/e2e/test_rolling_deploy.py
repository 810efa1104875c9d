"""Black box, a rolling deploy on PostgreSQL: three ``voicebot run`` processes restarted one at a
time (SIGTERM, wait, start) while 60 voice notes and 20 /speak arrive lose nothing, answer nothing
twice, submit nothing twice and interrupt nothing (the figures are in docs/restarts.md)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.fakes.telegram import FakeTelegram
from testkit.process import BotProcess
from testkit.stress import (
    Tally,
    Trigger,
    interrupted,
    once_each,
    telegram_run_config,
    wait_all_answered,
)

CHATS = (301, 302, 303, 304)
NOTES, SPEAKS = 60, 20


async def _feed(tg: FakeTelegram, tally: Tally, span: float) -> None:
    """Every fourth message a /speak, the others distinct voice notes, over ``span`` seconds."""
    total = NOTES + SPEAKS
    for i in range(total):
        chat = CHATS[i % len(CHATS)]
        if i % 4 == 3:
            text = f"Rolling deploy line {i}."
            message = tg.send_text(chat, chat, f"/speak {text}")
            tally.triggers.append(Trigger("tts", chat, message["message_id"], text))
        else:
            data = make_tone(0.5, freq=150.0 + 9 * i)
            message = tg.send_voice(chat, chat, data, duration=1)
            tally.triggers.append(Trigger("stt", chat, message["message_id"], ""))
        await asyncio.sleep(span / total)


async def _logged(bot: BotProcess, text: str, timeout: float = 30.0) -> float:
    """Seconds until ``text`` is in the process's log."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    for _ in range(int(timeout * 20)):
        if text in await asyncio.to_thread(lambda: bot.log):
            return loop.time() - began
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{text!r} not in {bot.log_path.name} after {timeout}s")


async def _restart(
    bots: list[BotProcess], index: int, config: Path, tmp_path: Path
) -> tuple[float, float | None]:
    """SIGTERM ``bots[index]``, wait for its exit, start its successor; (seconds the drain
    took, seconds until another process received Telegram updates if this one did)."""
    old = bots[index]
    leading = "polling as" in old.log
    others = [b for i, b in enumerate(bots) if i != index]
    before = [b.log.count("polling as") for b in others]
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await old.end(signal.SIGTERM, timeout=40) == 0
    drained = loop.time() - began
    taken: float | None = None
    if leading:
        for _ in range(600):
            if any(b.log.count("polling as") > n for b, n in zip(others, before, strict=True)):
                taken = loop.time() - began
                break
            await asyncio.sleep(0.05)
    new = BotProcess(config, tmp_path / f"bot{index}-{len(bots)}-{int(began)}.log")
    await new.start()
    bots[index] = new
    await _logged(new, "telegram adapter started")
    return drained, taken


async def test_rolling_deploy_three_processes_lose_and_repeat_nothing(
    tmp_path: Path, tg_nano: tuple[FakeTelegram, FakeNanoGpt], pg_url: str
) -> None:
    tg, nano = tg_nano
    nano.sync_delay = 1.0  # each transcription is in flight a while: restarts meet some
    config = telegram_run_config(tmp_path, tg, nano, pg_url, shutdown={"grace_seconds": 20})
    bots = [BotProcess(config, tmp_path / f"bot{i}.log") for i in range(3)]
    tally = Tally()
    feeder: asyncio.Task[None] | None = None
    figures: list[tuple[float, float | None]] = []
    try:
        for bot in bots:
            await bot.start()
        for bot in bots:
            await _logged(bot, "telegram adapter started")
        loop = asyncio.get_running_loop()
        began = loop.time()
        feeder = asyncio.create_task(_feed(tg, tally, span=24.0))
        for index in range(3):
            await asyncio.sleep(2.0)  # let work arrive and start between restarts
            figures.append(await _restart(bots, index, config, tmp_path))
        await feeder
        await wait_all_answered(tg, tally, timeout=40)
        elapsed = loop.time() - began
    finally:
        if feeder is not None:
            feeder.cancel()
        for bot in bots:
            if bot.proc is not None and bot.proc.returncode is None:
                await bot.end(signal.SIGTERM, timeout=40)
    for drained, taken in figures:
        took = f"; receiving resumed elsewhere after {taken:.1f} s" if taken is not None else ""
        print(f"restart: drained and exited in {drained:.1f} s{took}")
    print(f"{len(tally.triggers)} messages answered {elapsed:.1f} s after the first arrived")
    assert once_each(tg, tally) == [1] * (NOTES + SPEAKS)  # 0 lost, 0 answered twice
    assert interrupted(tg) == []
    assert nano.submits["transcribe"] == NOTES and nano.submits["tts"] == SPEAKS
    assert all(taken is None or taken < 5.0 for _, taken in figures)
