"""DiscordAdapter in-process on a real Core: real discord.py against the fake Discord + APIs."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.adapter import DiscordAdapter
from bot.app.core import Core
from bot.model.errors import BotError
from bot.model.job import Job
from testkit.discord_bot import Running, discord_section, message_writes, running_bot
from testkit.fakes.audio import decode_info, make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import make_config

pytestmark = pytest.mark.timeout(30)

NONE_PARSED = {"parse": []}
COMMANDS = {
    "transcribe",
    "speak",
    "status",
    "cancel",
    "settings",
    "voices",
    "forget",
    "usage",
    "help",
    "Transcribe",
    "summarize",
    "translate",
}


def assert_no_mentions(dc: FakeDiscord) -> None:
    writes = message_writes(dc)
    assert writes
    for request in writes:
        assert request.json.get("allowed_mentions") == NONE_PARSED, (request.path, request.json)


def nano_text(text: str) -> dict[str, Any]:
    """A synchronous NanoGPT transcription answer with ``text``."""
    return {
        "transcription": text,
        "metadata": {"actualDuration": 0.02, "language": "en", "cost": 0.001, "currency": "USD"},
    }


# -- voice messages ---------------------------------------------------------------------------


async def test_discord_voice_message_gets_transcript_reply(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):
        sent = await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, make_tone(1.0), 1.0)
        reply = await dc.wait_for(
            lambda: [m for m in dc.bot_messages() if "Fake transcript" in m["content"]]
        )
    assert reply[0]["message_reference"]["message_id"] == sent["id"]
    assert len(dc.bot_messages(dc.ids.text_channel)) == 1  # the placeholder became the reply
    assert nano.submits["transcribe"] == 1
    assert_no_mentions(dc)
    assert dc.identify_payloads[0]["intents"] & (1 << 15)
    names = {c["name"] for c in dc.commands[None]}
    assert names == COMMANDS


async def test_discord_async_diarized_transcript_with_progress(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.polls_to_complete = 2
    stt = {"model": "Elevenlabs-STT", "diarize": True}
    async with running_bot(tmp_path, dc, nano, canto, stt=stt):
        await dc.send_voice_message(dc.ids.thread, dc.ids.member, make_tone(2.0), 2.0)
        reply = await dc.wait_for(
            lambda: [m for m in dc.bot_messages(dc.ids.thread) if "Speaker 2" in m["content"]]
        )
    assert "Speaker 1" in reply[0]["content"]
    edits = dc.find_requests("PATCH", rf"/channels/{dc.ids.thread}/messages/\d+")
    assert any("Transcribing… job" in (r.json.get("content") or "") for r in edits)
    assert len(dc.bot_messages(dc.ids.thread)) == 1
    assert nano.requests_to("transcribe")[0].form["diarize"] == "true"


async def test_discord_voice_message_job_is_stored_with_its_placeholder(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    """The placeholder is sent first and its id is in the job as created: nothing is written
    back into the job afterwards."""
    async with running_bot(tmp_path, dc, nano, canto) as bot:
        await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, make_tone(1.0), 1.0)
        [placeholder] = await dc.wait_for(lambda: dc.bot_messages(dc.ids.text_channel))
        await dc.wait_for(
            lambda: [m for m in dc.bot_messages() if "Fake transcript" in m["content"]]
        )
        [job] = await bot.core.service.recent_jobs("discord", str(dc.ids.text_channel))
    assert job.origin.placeholder_id == str(placeholder["id"])
    assert job.progress_message_id is None and job.placeholder_id == str(placeholder["id"])


async def test_discord_bad_audio_edits_placeholder_with_reason(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):
        junk = dc.add_attachment(b"this is not audio at all" * 10, "note.mp3", "audio/mpeg")
        await dc.send_message(dc.ids.text_channel, dc.ids.member, attachments=[junk])
        failed = await dc.wait_for(
            lambda: [m for m in dc.bot_messages() if m["content"].startswith("❌")]
        )
    assert "audio" in failed[0]["content"].lower()
    assert nano.submits["transcribe"] == 0


async def test_discord_without_message_content_guild_voice_is_not_seen(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto, discord={"message_content": False}):
        await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, make_tone(0.5), 0.5)
        await dc.send_voice_message(dc.ids.dm_channel, dc.ids.member, make_tone(0.5), 0.5)
        await dc.wait_for(
            lambda: [m for m in dc.bot_messages(dc.ids.dm_channel) if "Fake" in m["content"]]
        )
    assert not dc.identify_payloads[0]["intents"] & (1 << 15)
    assert dc.bot_messages(dc.ids.text_channel) == []  # DMs work without the intent
    assert nano.submits["transcribe"] == 1


# -- context menu -----------------------------------------------------------------------------


async def test_discord_transcribe_menu_defers_then_delivers(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto, discord={"message_content": False}):
        target = await dc.send_voice_message(None, None, make_tone(1.0), 1.0)
        payload = await dc.send_message_command("Transcribe", target)
        record = dc.interaction(payload)
        await dc.wait_for(
            lambda: record.original and "Fake transcript" in record.original["content"]
        )
    assert record.callbacks == [{"type": 5}]  # deferred ("thinking")
    assert record.original is not None and not record.original["flags"] & 64
    # Only the interaction response: no placeholder in the channel, no second reply.
    assert [m["id"] for m in dc.bot_messages()] == [record.original["id"]]
    assert_no_mentions(dc)


async def test_discord_transcribe_menu_on_a_text_message_answers_ephemerally(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):
        target = await dc.send_message(content="just text")
        payload = await dc.send_message_command("Transcribe", target)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.original)
    assert record.original is not None and record.original["flags"] & 64
    assert "no voice message" in record.original["content"]


async def test_discord_job_outliving_its_token_replies_in_channel(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.processing_delay = 0.8  # keeps the job at the provider while the token "expires"
    nano.polls_to_complete = 1
    stt = {"model": "Elevenlabs-STT"}
    async with running_bot(tmp_path, dc, nano, canto, stt=stt, discord={"message_content": False}):
        target = await dc.send_voice_message(None, None, make_tone(1.0), 1.0)
        payload = await dc.send_message_command("Transcribe", target)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.callbacks)
        dc.expire_token(record.token)  # Discord answers 401 50027 from now on
        await nano.wait_for("transcribe")
        reply = await dc.wait_for(
            lambda: [m for m in dc.bot_messages() if "how are you" in m["content"]]
        )
    assert reply[0]["message_reference"]["message_id"] == target["id"]
    assert record.followups == []
    assert nano.submits["transcribe"] == 1


# -- /speak -----------------------------------------------------------------------------------


async def test_discord_speak_posts_a_native_voice_message(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):
        payload = await dc.send_slash("speak", {"text": "Hello there"})
        request = await dc.wait_for_request(
            "POST", rf"/channels/{dc.ids.text_channel}/messages", where=lambda r: r.status == 200
        )
        record = dc.interaction(payload)
        await dc.wait_for(
            lambda: record.original and "Voice message posted" in record.original["content"]
        )
    assert record.callbacks == [{"type": 5}]
    body = request.json
    assert body["flags"] == 8192 and not body.get("content")
    assert body["allowed_mentions"] == NONE_PARSED
    [meta] = body["attachments"]
    assert len(request.files) == 1
    part = request.part("files[0]")
    assert part.content_type == "audio/ogg" and part.filename == "voice-message.ogg"
    fmt, codec, seconds, rate, channels = decode_info(part.data)
    assert (fmt, codec, rate, channels) == ("ogg", "opus", 48000, 1)
    assert abs(seconds - meta["duration_secs"]) < 0.1
    waveform = base64.b64decode(meta["waveform"], validate=True)
    assert 1 <= len(waveform) <= 256
    [posted] = [m for m in dc.bot_messages() if m["id"] == request.response["id"]]
    assert posted["flags"] & 8192 and posted["attachments"][0]["content_type"] == "audio/ogg"
    assert posted["id"] in record.original["content"]


async def test_discord_speak_refused_voice_message_falls_back_to_a_file(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    dc.refuse_voice_messages = True
    async with running_bot(tmp_path, dc, nano, canto):
        payload = await dc.send_slash("speak", {"text": "Hello there"})
        record = dc.interaction(payload)
        await dc.wait_for(
            lambda: record.original and "Voice message posted" in record.original["content"]
        )
    refused = dc.find_requests("POST", r"/channels/\d+/messages")
    assert [r.status for r in refused] == [403, 200]
    [posted] = [m for m in dc.bot_messages() if m["id"] != record.original["id"]]
    assert not posted["flags"] & 8192
    assert posted["attachments"][0]["filename"] == "speech.ogg"
    assert decode_info(refused[1].files[0].data)[1] == "opus"


async def test_discord_speak_empty_text_explains(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):
        payload = await dc.send_slash("speak", {"text": "   "})
        record = dc.interaction(payload)
        [answer] = await dc.wait_for(lambda: record.followups)
    assert "Nothing to say" in answer["content"] and answer["flags"] & 64
    assert record.original is None  # the public "thinking…" message was removed
    assert nano.submits["tts"] == 0


# -- rendering --------------------------------------------------------------------------------


async def test_discord_everyone_in_a_transcript_pings_nobody(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.push("transcribe", 200, nano_text("Hey @everyone look at **this** <@123>"))
    async with running_bot(tmp_path, dc, nano, canto):
        await dc.send_voice_message(None, None, make_tone(0.5), 0.5)
        reply = await dc.wait_for(lambda: [m for m in dc.bot_messages() if "Hey" in m["content"]])
    content = reply[0]["content"]
    assert "@everyone" not in content  # defused with a zero-width space
    assert "\\*\\*this\\*\\*" in content
    assert_no_mentions(dc)


async def test_discord_long_transcript_is_split_then_attached(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    words = " ".join(f"word{i}" for i in range(700))  # ~5,500 characters: 3 messages
    nano.push("transcribe", 200, nano_text(words))
    nano.push("transcribe", 200, nano_text(" ".join([words] * 3)))  # > 3 messages: a file
    async with running_bot(tmp_path, dc, nano, canto):
        await dc.send_voice_message(None, None, make_tone(0.5), 0.5)
        await dc.wait_for(lambda: any("word699" in m["content"] for m in dc.bot_messages()))
        split = [m["content"] for m in dc.bot_messages()]
        await dc.send_voice_message(None, None, make_tone(0.6), 0.6)
        attached = await dc.wait_for(lambda: [m for m in dc.bot_messages() if m["attachments"]])
    assert len(split) == 3 and all(len(c) <= 2000 for c in split)
    assert " ".join(split).split() == words.split()
    names = [a["filename"] for a in attached[0]["attachments"]]
    assert len(names) == 1 and names[0].endswith(".txt")
    assert "attached as a file" in attached[0]["content"]


# -- /status and /settings --------------------------------------------------------------------


async def test_discord_status_lists_this_channels_jobs(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto) as bot:
        await dc.send_voice_message(None, None, make_tone(0.5), 0.5)
        await dc.wait_for(lambda: any("Fake" in m["content"] for m in dc.bot_messages()))
        [job] = await bot.core.service.recent_jobs("discord", str(dc.ids.text_channel))
        here = dc.interaction(await dc.send_slash("status"))
        one = dc.interaction(await dc.send_slash("status", {"job": job.id}))
        elsewhere = dc.interaction(await dc.send_slash("status", channel_id=dc.ids.other_channel))
        await dc.wait_for(lambda: here.original and one.original and elsewhere.original)
    assert here.original is not None and one.original is not None
    assert elsewhere.original is not None
    assert job.id in here.original["content"] and here.original["flags"] & 64
    assert (
        f"Job {job.id}" in one.original["content"]
        and "provider: nanogpt" in one.original["content"]
    )
    assert "No jobs" in elsewhere.original["content"]


async def test_discord_settings_need_manage_server_in_guilds(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto) as bot:
        service = bot.core.service
        key = f"guild:{dc.ids.guild}"
        denied = dc.interaction(
            await dc.send_slash("settings", {"name": "autotranscribe", "value": "off"})
        )
        await dc.wait_for(lambda: denied.original)
        assert (await service.settings("discord", key)).auto_transcribe is True
        allowed = dc.interaction(
            await dc.send_slash(
                "settings", {"name": "autotranscribe", "value": "off"}, user_id=dc.ids.admin
            )
        )
        await dc.wait_for(lambda: allowed.original)
        assert (await service.settings("discord", key)).auto_transcribe is False
        dm = dc.interaction(
            await dc.send_slash("settings", {"name": "language", "value": "de"}, guild=False)
        )
        await dc.wait_for(lambda: dm.original)
        shown = dc.interaction(await dc.send_slash("settings"))
        await dc.wait_for(lambda: shown.original)
        # Auto-transcribe is off in the guild now: a voice message gets no reply.
        await dc.send_voice_message(None, None, make_tone(0.5), 0.5)
        # A DM voice message sent afterwards is answered: by then the guild one was handled.
        await dc.send_voice_message(dc.ids.dm_channel, None, make_tone(0.5), 0.5)
        await bot.bot_message("Fake transcript", dc.ids.dm_channel)
        assert not [m for m in dc.bot_messages(dc.ids.text_channel) if m["type"] == 19]
    assert denied.original is not None and "Manage Server" in denied.original["content"]
    assert allowed.original is not None and "autotranscribe: off" in allowed.original["content"]
    assert dm.original is not None and "language: German (de)" in dm.original["content"]
    assert shown.original is not None and "autotranscribe: off" in shown.original["content"]
    assert nano.submits["transcribe"] == 1  # only the DM one


async def test_discord_guild_sync_and_help_is_ephemeral(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    section = {"guild_ids": [dc.ids.guild]}
    async with running_bot(tmp_path, dc, nano, canto, discord=section):
        record = dc.interaction(await dc.send_slash("help"))
        await dc.wait_for(lambda: record.original)
    assert None not in dc.commands  # synced to the configured guild only
    names = {c["name"] for c in dc.commands[dc.ids.guild]}
    assert names == COMMANDS
    assert record.payload["data"]["guild_id"] == str(dc.ids.guild)
    assert record.original is not None and record.original["flags"] & 64
    assert "/speak" in record.original["content"]


# -- delivery edge cases and lifecycle --------------------------------------------------------


async def test_discord_deleted_placeholder_gets_a_fresh_reply(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.polls_to_complete = 2
    async with running_bot(tmp_path, dc, nano, canto, stt={"model": "Elevenlabs-STT"}):
        sent = await dc.send_voice_message(None, None, make_tone(1.0), 1.0)
        [placeholder] = await dc.wait_for(lambda: dc.bot_messages())
        await dc.forget_message(placeholder)
        reply = await dc.wait_for(
            lambda: [m for m in dc.bot_messages() if "how are you" in m["content"]]
        )
    assert reply[0]["message_reference"]["message_id"] == sent["id"]
    assert len(dc.bot_messages()) == 1


async def test_discord_missing_permissions_is_a_permanent_delivery_error(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto) as bot:
        dc.fail(
            "PATCH",
            r"/channels/\d+/messages/\d+",
            403,
            {"message": "Missing Permissions", "code": 50013},
            times=None,
        )
        await dc.send_voice_message(None, None, make_tone(0.5), 0.5)
        [job] = await wait_jobs(bot, 1)

        async def undelivered() -> None:
            while True:
                current = await bot.core.store.get(job.id)
                if current is not None and current.delivery_error:
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(undelivered(), 10)
        final = await bot.core.store.get(job.id)
    assert final is not None and "50013" in (final.delivery_error or "")
    assert final.delivery_attempts <= 1


async def wait_jobs(bot: Running, count: int) -> list[Job]:
    async def poll() -> list[Job]:
        while True:
            jobs = await bot.core.service.recent_jobs("discord", str(bot.dc.ids.text_channel))
            if len(jobs) >= count:
                return jobs
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), 10)


async def test_discord_wrong_token_fails_start_and_restores_endpoints(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    section = discord_section(dc, token="wrong-token-123")
    config = make_config(tmp_path, nano_url=nano.url, canto_url=canto.url, discord=section)
    core = await Core.open(config)
    try:
        adapter = DiscordAdapter(core)
        with pytest.raises(BotError, match="token"):
            await adapter.start()
    finally:
        await core.close()
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)


async def test_discord_denied_guild_gets_no_answer_and_forget_deletes_jobs(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    access = {"deny": [f"discord:guild:{dc.ids.guild}"]}
    async with running_bot(tmp_path, dc, nano, canto, access=access) as bot:
        await dc.send_voice_message(None, None, make_tone(0.5), 0.5)
        await dc.send_voice_message(dc.ids.dm_channel, None, make_tone(0.5), 0.5)
        await bot.bot_message("Fake transcript", dc.ids.dm_channel)
        forget = dc.interaction(await dc.send_slash("forget", guild=False))
        await dc.wait_for(lambda: forget.original)
        remaining = await bot.core.service.recent_jobs("discord", str(dc.ids.dm_channel))
    assert forget.original is not None and "Deleted 1" in forget.original["content"]
    assert remaining == []
    assert dc.bot_messages(dc.ids.text_channel) == []  # the denied guild heard nothing
    assert nano.submits["transcribe"] == 1


async def test_discord_same_speak_posts_the_stored_clip_as_a_voice_message(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    def voice_posts() -> list[Any]:
        return [
            r
            for r in dc.find_requests("POST", rf"/channels/{dc.ids.text_channel}/messages")
            if r.status == 200 and r.json.get("flags") == 8192
        ]

    async with running_bot(tmp_path, dc, nano, canto):
        for count in (1, 2):
            await dc.send_slash("speak", {"text": "Hello there"})
            await dc.wait_for(lambda n=count: len(voice_posts()) == n)
        assert nano.submits["tts"] == 1  # the second one: no provider request at all
        await dc.send_slash("speak", {"text": "Hello there, again"})
        await dc.wait_for(lambda: len(voice_posts()) == 3)
    assert nano.submits["tts"] == 2  # other text: synthesized anew
    first, second, _ = voice_posts()
    assert second.part("files[0]").data == first.part("files[0]").data
    assert second.json["attachments"][0]["waveform"] == first.json["attachments"][0]["waveform"]
