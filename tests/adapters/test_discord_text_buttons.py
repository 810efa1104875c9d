"""Summarize / Translate under a finished transcript on Discord (real discord.py against
FakeDiscord, the fake chat-completions server): message buttons, the component interaction, a
durable job answering in its deferred response, once per transcript + action + language."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.model.job import Job, JobKind, JobState
from testkit.discord_bot import Running, running_bot
from testkit.fakes.audio import make_tone
from testkit.fakes.chat import FakeChat
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.discord_world import JSON
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import llm_route


async def transcript_message(r: Running, voice: JSON) -> tuple[JSON, Job]:
    """The bot's finished transcript for ``voice`` (with its buttons) and its job."""

    def found() -> JSON | None:
        for m in r.dc.bot_messages():
            replying = (m.get("message_reference") or {}).get("message_id") == voice["id"]
            if replying and "Fake transcript" in (m.get("content") or "") and m.get("components"):
                return m
        return None

    message = await r.dc.wait_for(found)
    jobs = await r.core.store.recent_for_chat("discord", str(r.dc.ids.text_channel))
    [job] = [j for j in jobs if j.origin.reply_to == voice["id"]]
    return message, job


async def test_discord_summarize_button_answers_once(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese, chat: FakeChat
) -> None:
    extra = llm_route(chat)
    async with running_bot(tmp_path, dc, nano, canto, extra=extra) as r:
        voice = await dc.send_voice_message(None, dc.ids.admin, make_tone(1.0), 1.0)
        message, job = await transcript_message(r, voice)
        ids = [c["custom_id"] for row in message["components"] for c in row["components"]]
        assert ids == [f"voicebot:sum:{job.id}", f"voicebot:tr:{job.id}"]
        payload = await dc.press_button(message, f"voicebot:sum:{job.id}", dc.ids.member)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.original and "Summary of" in record.original["content"])
        assert record.callbacks[0]["type"] == 5  # deferred: "thinking…" until the job answers
        for _ in range(100):
            texts = [j for j in await r.core.store.recent(10) if j.kind is JobKind.TEXT]
            if texts and texts[0].delivered:
                break
            await asyncio.sleep(0.05)
        [summary] = texts
        assert summary.state is JobState.COMPLETED and summary.options["action"] == "summary"
        again = dc.interaction(await dc.press_button(message, f"voicebot:sum:{job.id}"))
        await dc.wait_for(lambda: again.followups)
        assert f"already made: job {summary.id}" in again.followups[0]["content"]
        assert again.followups[0]["flags"] & 64  # only the presser sees it
    assert chat.submits["chat"] == 1
    [sent] = chat.requests_to("chat")
    assert "in English" in sent.json["messages"][0]["content"]  # the presser's locale, en-US


async def test_discord_summary_answers_in_the_servers_language(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese, chat: FakeChat
) -> None:
    """Settings are kept per server on Discord: a button's answer and the job it starts read
    them there, not under the channel the button was pressed in."""
    extra = llm_route(chat)
    async with running_bot(tmp_path, dc, nano, canto, extra=extra) as r:
        voice = await dc.send_voice_message(None, dc.ids.admin, make_tone(1.0), 1.0)
        message, job = await transcript_message(r, voice)
        await r.core.store.usage.put_settings(
            "discord", f"guild:{dc.ids.guild}", {"ui_language": "de"}, 1.0
        )
        first = dc.interaction(await dc.press_button(message, f"voicebot:sum:{job.id}"))
        await dc.wait_for(lambda: first.original and "Summary of" in first.original["content"])
        texts = [j for j in await r.core.store.recent(10) if j.kind is JobKind.TEXT]
        assert [j.origin.locale for j in texts] == ["de"]
        again = dc.interaction(await dc.press_button(message, f"voicebot:sum:{job.id}"))
        await dc.wait_for(lambda: again.followups)
        assert "Die Zusammenfassung wurde schon erstellt" in again.followups[0]["content"]


async def test_discord_translate_command_in_a_picked_language(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese, chat: FakeChat
) -> None:
    extra = llm_route(chat)
    async with running_bot(tmp_path, dc, nano, canto, extra=extra) as r:
        voice = await dc.send_voice_message(None, dc.ids.admin, make_tone(1.0), 1.0)
        _, job = await transcript_message(r, voice)
        payload = await dc.send_slash("translate", {"job": job.id, "language": "ja"})
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.original and "Summary of" in record.original["content"])
        missing = dc.interaction(await dc.send_slash("translate", {"job": "zzzzzz"}))
        await dc.wait_for(lambda: missing.followups)
        assert "no finished transcript zzzzzz" in missing.followups[0]["content"]
    [sent] = chat.requests_to("chat")
    assert "Translate this transcript into Japanese" in sent.json["messages"][0]["content"]
