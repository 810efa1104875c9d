"""The real Telegram adapter in-process: real PTB against FakeTelegram, a real Core against the
fake providers, and the ids and answers the tests share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.telegram.adapter import TelegramAdapter
from bot.app.core import Core
from bot.model.job import Job
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.fakes.telegram import Call, FakeTelegram
from testkit.support import make_config

USER = 42
OTHER = 43
ADMIN = 7
MEMBER = 8
GROUP = -1001234567890


@dataclass
class World:
    tg: FakeTelegram
    nano: FakeNanoGpt
    core: Core
    adapter: TelegramAdapter

    def mark(self) -> int:
        return len(self.tg.calls)

    async def reply_to(self, message: dict[str, Any], start: int = 0) -> Call:
        """The bot's next message sent in reply to ``message``."""
        mid = message["message_id"]
        return await self.tg.wait_for(
            lambda c: (
                c.method in ("sendMessage", "sendVoice", "sendDocument")
                and c.chat_id == message["chat"]["id"]
                and (c.params.get("reply_parameters") or {}).get("message_id") == mid
            ),
            start=start,
        )

    async def edit_of(self, message_id: int, chat: int = USER, start: int = 0) -> Call:
        return await self.tg.wait_for(
            lambda c: (
                c.method == "editMessageText"
                and c.chat_id == chat
                and c.params.get("message_id") == message_id
                and "…" not in (c.text or "")
            ),
            start=start,
        )

    async def delivered(self, job_id: str) -> Job:
        """Wait until the store says the job's reply was accepted."""
        for _ in range(200):
            job = await self.core.store.get(job_id)
            if job is not None and job.delivered:
                return job
            await asyncio.sleep(0.05)
        raise TimeoutError(job_id)


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **sections: dict[str, Any]) -> AsyncIterator[World]:
    async with FakeTelegram() as tg, FakeNanoGpt() as nano, FakeCantonese() as canto:
        telegram = {"token": tg.token, "api_base": tg.api_base, **sections.pop("telegram", {})}
        config = make_config(
            tmp_path, nano_url=nano.url, canto_url=canto.url, telegram=telegram, **sections
        )
        nano.polls_to_complete = 1
        core = await Core.open(config)
        adapter = TelegramAdapter(core, poll_timeout=5)
        core.worker.register("telegram", adapter)
        await adapter.start()
        core.poller.start()
        try:
            yield World(tg, nano, core, adapter)
        finally:
            await adapter.stop()
            await core.poller.stop(timeout=2)
            await core.close()


def placeholder_job_id(call: Call) -> str:
    text = call.text or ""
    assert "<code>" in text, text
    return text.split("<code>", 1)[1].split("</code>", 1)[0]


def transcript_answer(text: str, **extra: Any) -> dict[str, Any]:
    meta = {"actualDuration": 0.05, "language": "en", "cost": 0.001, "currency": "USD"}
    return {"transcription": text, "metadata": meta, **extra}
