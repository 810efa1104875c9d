"""Links on Discord (real discord.py against FakeDiscord): ``/transcribe url:`` and the
"Transcribe" menu on a message with a link; refusals answered privately, nothing fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.discord_bot import running_bot
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.media_site import MediaSite
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt

pytestmark = pytest.mark.timeout(30)
TEST_SITE = {"links": {"allowed_networks": ["127.0.0.1/32"]}}


async def test_discord_links_menu_on_a_message_with_a_link_transcribes_the_link(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese, site: MediaSite
) -> None:
    async with running_bot(tmp_path, dc, nano, canto, extra=TEST_SITE):
        target = await dc.send_message(content=f"the talk: {site.base}/audio.ogg!")
        record = dc.interaction(await dc.send_message_command("Transcribe", target))
        await dc.wait_for(
            lambda: record.original and "Fake transcript" in record.original["content"]
        )
    assert record.callbacks == [{"type": 5}]  # deferred, public: the bot is in this channel
    assert record.original is not None and f"{site.base}/audio.ogg" in record.original["content"]
    assert site.requests["/audio.ogg"] >= 1 and nano.submits["transcribe"] == 1


async def test_discord_links_slash_refusal_is_private_and_fetches_nothing(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese, site: MediaSite
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):  # default links: loopback refused
        record = dc.interaction(
            await dc.send_slash("transcribe", {"url": f"{site.base}/audio.ogg"})
        )
        await dc.wait_for(lambda: record.followups)
        scheme = dc.interaction(await dc.send_slash("transcribe", {"url": "file:///etc/passwd"}))
        await dc.wait_for(lambda: scheme.followups)
    [refusal] = record.followups
    assert refusal["flags"] & 64 and "private or local network address" in refusal["content"]
    assert "Only http:// and https://" in scheme.followups[0]["content"]
    assert site.total_requests == 0 and nano.submits["transcribe"] == 0
    # The public "thinking…" was taken back: only the refusals are left, each seen by its asker.
    assert len(dc.bot_messages()) == 2 and all(m["flags"] & 64 for m in dc.bot_messages())


async def test_discord_links_help_mentions_links_and_the_user_install(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):
        record = dc.interaction(await dc.send_slash("help"))
        await dc.wait_for(lambda: record.callbacks)
    text = record.callbacks[0]["data"]["content"]
    assert "/transcribe url" in text and "Add the app to your own account" in text


async def test_discord_links_user_installed_transcribe_where_the_bot_is_not_a_member(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese, site: MediaSite
) -> None:
    foreign = dc.ids.foreign_channel
    async with running_bot(tmp_path, dc, nano, canto, extra=TEST_SITE):
        payload = await dc.send_slash("transcribe", {"url": f"{site.base}/audio.ogg"}, foreign)
        record = dc.interaction(payload)
        await dc.wait_for(
            lambda: record.original and "Fake transcript" in record.original["content"]
        )
    assert record.callbacks == [{"type": 5, "data": {"flags": 64}}]  # deferred, private
    assert record.original is not None and record.original["flags"] & 64
    assert "voicebot:post:" in str(record.original["components"])  # 📢 Post it
    assert not [r for r in dc.requests if f"/channels/{foreign}" in r.path]
