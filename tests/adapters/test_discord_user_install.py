"""The app installed to a user: Transcribe, /transcribe, /speak, /status and /cancel where the bot
is not a member (the fake sends ``authorizing_integration_owners`` / ``context`` as Discord
does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.discord_bot import running_bot
from testkit.fakes.audio import make_tone
from testkit.fakes.chat import FakeChat
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.discord_http import JSON
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import llm_route

pytestmark = pytest.mark.timeout(30)

ANYWHERE = {"Transcribe", "transcribe", "speak", "status", "cancel"}


def buttons(message: JSON) -> dict[str, str]:
    """custom_id → label of a message's buttons."""
    return {
        c["custom_id"]: c.get("label", "")
        for row in message.get("components", [])
        for c in row.get("components", [])
    }


def channel_writes(dc: FakeDiscord, channel_id: int) -> list[str]:
    """Bot-token requests on a channel (the bot cannot make any where it is not a member)."""
    return [r.path for r in dc.requests if f"/channels/{channel_id}" in r.path]


async def test_discord_user_install_offers_only_what_works_without_the_bot(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):
        commands = {c["name"]: c for c in dc.commands[None]}
        with pytest.raises(AssertionError, match="not offered"):
            await dc.send_slash("settings", channel_id=dc.ids.foreign_channel)
    for name, command in commands.items():
        if name in ANYWHERE:
            assert sorted(command["integration_types"]) == [0, 1], name
            assert sorted(command["contexts"]) == [0, 1, 2], name
        else:  # /settings, /forget… act on a server or channel the bot belongs to
            assert command["integration_types"] == [0], name


async def test_discord_user_installed_transcribe_in_a_server_without_the_bot(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    foreign = dc.ids.foreign_channel
    async with running_bot(tmp_path, dc, nano, canto) as bot:
        # Someone's voice message in a server that never invited the bot: no event reaches it.
        target = await dc.send_voice_message(foreign, dc.ids.owner, make_tone(1.0), 1.0)
        payload = await dc.send_message_command("Transcribe", target)
        record = dc.interaction(payload)
        await dc.wait_for(
            lambda: record.original and "Fake transcript" in record.original["content"]
        )
        [job] = await bot.core.service.recent_jobs("discord", str(foreign))
        private = record.original
        # Its requester makes it public with the button, through the click's interaction.
        assert private is not None
        click = await dc.press_button(private, f"voicebot:post:{job.id}")
        posted = dc.interaction(click)
        await dc.wait_for(lambda: posted.original)
    assert payload["authorizing_integration_owners"] == {"1": str(dc.ids.member)}
    assert payload["context"] == 0 and payload["guild_id"] == str(dc.ids.foreign_guild)
    assert record.callbacks == [{"type": 5, "data": {"flags": 64}}]  # deferred, private
    assert private["flags"] & 64
    assert f"voicebot:post:{job.id}" in buttons(private)
    assert job.origin.extra["bot_absent"] is True
    assert posted.original is not None and not posted.original["flags"] & 64
    assert "Fake transcript" in posted.original["content"]
    assert channel_writes(dc, foreign) == []  # everything went through the interactions


async def test_discord_post_it_refuses_someone_else(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    foreign = dc.ids.foreign_channel
    async with running_bot(tmp_path, dc, nano, canto) as bot:
        target = await dc.send_voice_message(foreign, dc.ids.owner, make_tone(1.0), 1.0)
        record = dc.interaction(await dc.send_message_command("Transcribe", target))
        await dc.wait_for(
            lambda: record.original and "Fake transcript" in record.original["content"]
        )
        [job] = await bot.core.service.recent_jobs("discord", str(foreign))
        assert record.original is not None
        click = await dc.press_button(record.original, f"voicebot:post:{job.id}", dc.ids.admin)
        refused = dc.interaction(click)
        await dc.wait_for(lambda: refused.original)
    assert refused.original is not None and refused.original["flags"] & 64
    assert "Only the person who asked" in refused.original["content"]


async def test_discord_user_installed_reply_after_the_token_goes_by_dm(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.processing_delay = 0.8  # keeps the job at the provider while the token "expires"
    nano.polls_to_complete = 1
    stt = {"model": "Elevenlabs-STT"}
    foreign = dc.ids.foreign_channel
    async with running_bot(tmp_path, dc, nano, canto, stt=stt):
        target = await dc.send_voice_message(foreign, dc.ids.owner, make_tone(1.0), 1.0)
        record = dc.interaction(await dc.send_message_command("Transcribe", target))
        await dc.wait_for(lambda: record.callbacks)
        dc.expire_token(record.token)  # the 15 minutes are over
        dm = dc.world.add_dm_channel(dc.ids.member)
        await dc.wait_for(lambda: [m for m in dc.bot_messages(dm) if "how are you" in m["content"]])
    [reply] = dc.bot_messages(dm)  # the reason, then the transcript, in one message
    assert reply["content"].index("15 minutes") < reply["content"].index("how are you")
    assert record.followups == []
    assert channel_writes(dc, foreign) == []
    assert nano.submits["transcribe"] == 1


async def test_discord_user_installed_speak_posts_through_the_interaction(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    foreign = dc.ids.foreign_channel
    async with running_bot(tmp_path, dc, nano, canto):
        payload = await dc.send_slash("speak", {"text": "Hello there"}, channel_id=foreign)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.followups)
        status = dc.interaction(await dc.send_slash("status", channel_id=foreign))
        await dc.wait_for(lambda: status.original)
    [voice] = record.followups
    assert voice["flags"] & 8192 and not voice["flags"] & 64
    assert voice["attachments"][0]["content_type"] == "audio/ogg"
    assert status.original is not None and status.original["flags"] & 64
    assert channel_writes(dc, foreign) == []


async def test_discord_user_install_in_a_server_with_the_bot_posts_publicly(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    """Installed both ways, the server's install counts: the transcript is public as before."""
    async with running_bot(tmp_path, dc, nano, canto, discord={"message_content": False}):
        target = await dc.send_voice_message(None, None, make_tone(1.0), 1.0)
        payload = await dc.send_message_command("Transcribe", target, user_install=True)
        record = dc.interaction(payload)
        await dc.wait_for(
            lambda: record.original and "Fake transcript" in record.original["content"]
        )
    assert set(payload["authorizing_integration_owners"]) == {"0", "1"}
    assert record.callbacks == [{"type": 5}]
    assert record.original is not None and not record.original["flags"] & 64
    assert not any(cid.startswith("voicebot:post:") for cid in buttons(record.original))


async def test_discord_private_transcript_stays_private_in_every_part(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    words = " ".join(f"word{i}" for i in range(700))  # ~5,500 characters: 3 messages
    nano.push("transcribe", 200, {"transcription": words, "metadata": {"language": "en"}})
    foreign = dc.ids.foreign_channel
    async with running_bot(tmp_path, dc, nano, canto):
        target = await dc.send_voice_message(foreign, dc.ids.owner, make_tone(1.0), 1.0)
        record = dc.interaction(await dc.send_message_command("Transcribe", target))
        await dc.wait_for(lambda: any("word699" in m["content"] for m in record.followups))
    parts = [record.original, *record.followups]
    assert len(parts) == 3 and all(m is not None and m["flags"] & 64 for m in parts)
    assert all(m is not None and not buttons(m) for m in parts[:-1])  # Post it under the last
    assert any(cid.startswith("voicebot:post:") for cid in buttons(record.followups[-1]))


async def test_discord_summary_of_a_private_transcript_is_private(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese, chat: FakeChat
) -> None:
    foreign = dc.ids.foreign_channel
    async with running_bot(tmp_path, dc, nano, canto, extra=llm_route(chat)) as bot:
        target = await dc.send_voice_message(foreign, dc.ids.owner, make_tone(1.0), 1.0)
        record = dc.interaction(await dc.send_message_command("Transcribe", target))
        await dc.wait_for(lambda: record.original and buttons(record.original))
        [job] = await bot.core.service.recent_jobs("discord", str(foreign))
        assert record.original is not None
        click = await dc.press_button(record.original, f"voicebot:sum:{job.id}")
        summary = dc.interaction(click)
        await dc.wait_for(lambda: summary.original and "Summary of" in summary.original["content"])
    assert summary.callbacks == [{"type": 5, "data": {"flags": 64}}]
    assert summary.original is not None and summary.original["flags"] & 64
    assert any(cid.startswith("voicebot:post:") for cid in buttons(summary.original))
    assert channel_writes(dc, foreign) == []
