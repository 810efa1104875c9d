"""/cancel and the ✖ button on Discord (real discord.py against FakeDiscord)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.discord.cancel import CUSTOM_ID
from bot.jobs.poller import Reach
from bot.model.job import Job, JobState
from testkit.discord_bot import Running, running_bot
from testkit.fakes.audio import make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.discord_world import JSON
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt

ASYNC_STT = {"model": "Elevenlabs-STT"}


async def placeholder_job(r: Running, voice: JSON) -> tuple[JSON, Job]:
    """The bot's placeholder for ``voice`` (with its button) and the job behind it."""

    def found() -> JSON | None:
        hits = [
            m
            for m in r.dc.bot_messages()
            if (m.get("message_reference") or {}).get("message_id") == voice["id"]
            and m.get("components")
        ]
        return hits[0] if hits else None

    placeholder = await r.dc.wait_for(found)
    for _ in range(100):
        jobs = await r.core.store.recent_for_chat("discord", str(r.dc.ids.text_channel))
        mine = [j for j in jobs if j.origin.reply_to == voice["id"]]
        if mine:
            return placeholder, mine[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no job for the voice message")


async def test_discord_cancel_button_only_for_owner_or_moderator(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.polls_to_complete = 10**6
    async with running_bot(tmp_path, dc, nano, canto, stt=ASYNC_STT) as r:
        voice = await dc.send_voice_message(None, dc.ids.admin, make_tone(1.0), 1.0)
        placeholder, job = await placeholder_job(r, voice)
        button = placeholder["components"][0]["components"][0]
        assert button["custom_id"] == CUSTOM_ID and button["type"] == 2
        payload = await dc.press_button(placeholder, CUSTOM_ID, dc.ids.member)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.callbacks)
        [refusal] = record.callbacks
        assert refusal["type"] == 4 and refusal["data"]["flags"] & 64  # ephemeral
        assert "Only the person who started a job" in refusal["data"]["content"]
        still = await r.core.store.get(job.id)
        assert still is not None and not still.state.terminal

        mine = await dc.send_voice_message(None, dc.ids.member, make_tone(1.2), 1.2)
        placeholder, job = await placeholder_job(r, mine)
        payload = await dc.press_button(placeholder, CUSTOM_ID, dc.ids.member)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.callbacks)
        [update] = record.callbacks
        assert update["type"] == 7 and update["data"]["components"] == []
        assert update["data"]["content"].startswith(f"✖ Cancelled job {job.id}")
        shown = dc.world.messages[int(placeholder["id"])]
        assert shown["content"].startswith("✖ Cancelled") and shown["components"] == []
        done = await r.core.store.get(job.id)
        assert done is not None and done.state is JobState.CANCELLED


async def test_discord_cancel_command_stops_polling_and_clears_the_button(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.polls_to_complete = 10**6
    async with running_bot(tmp_path, dc, nano, canto, stt=ASYNC_STT) as r:
        voice = await dc.send_voice_message(None, dc.ids.member, make_tone(1.0), 1.0)
        placeholder, job = await placeholder_job(r, voice)
        await nano.wait_for("transcribe/status", timeout=10)
        payload = await dc.send_slash("cancel", {}, user_id=dc.ids.member)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.callbacks)
        [answer] = record.callbacks
        assert answer["data"]["flags"] & 64
        assert f"Cancelled job {job.id}" in answer["data"]["content"]
        assert "may still be charged" in answer["data"]["content"]
        await dc.wait_for(
            lambda: dc.world.messages[int(placeholder["id"])]["content"].startswith("✖")
        )
        assert dc.world.messages[int(placeholder["id"])]["components"] == []
        polls = len(nano.requests_to("transcribe/status"))
        # Nothing of this platform is left to poll or deliver (recorded in the store), so no
        # poll can follow and the count is final.
        assert await r.core.store.claims.next_wakeup(Reach(["discord"])) is None
        assert len(nano.requests_to("transcribe/status")) == polls
        again = dc.interaction(await dc.send_slash("cancel", {"job": job.id}))
        await dc.wait_for(lambda: again.callbacks)
        assert "already finished" in again.callbacks[0]["data"]["content"]
