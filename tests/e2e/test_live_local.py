"""Live text on Discord from the real local engine: a long voice message's placeholder grows
with finished segments, then becomes the one transcript reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.discord_bot import running_bot
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.local_engines import SENTENCE, local_sections, voice_note, word_error_rate

pytestmark = pytest.mark.timeout(300)


async def test_live_local_discord_placeholder_grows_then_one_reply(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    text = " ".join([SENTENCE] * 24)  # a few minutes of speech: many segments, many polls
    note = await voice_note(text)
    sections = local_sections(tmp_path)
    channel = dc.ids.text_channel
    async with running_bot(
        tmp_path, dc, nano, canto, stt=sections["stt"], extra={"providers": sections["providers"]}
    ):
        await dc.send_voice_message(channel, dc.ids.member, note, 150.0)
        [final] = await dc.wait_for(
            lambda: [m for m in dc.bot_messages(channel) if m["content"].startswith("The quick")],
            timeout=240,
        )
        edits = dc.find_requests("PATCH", rf"/channels/{channel}/messages/{final['id']}")
    contents = [str(r.json.get("content") or "") for r in edits]
    live = [c.split("\n\n", 1)[1] for c in contents if "Transcribing…" in c and "\n\n" in c]
    assert live, contents
    # Only finished segments: each text so far is in the final reply, and it grows.
    assert all(shown.lstrip("…") in final["content"] for shown in live)
    assert contents[-1] == final["content"] and word_error_rate(text, final["content"]) <= 0.25
    assert len(dc.bot_messages(channel)) == 1  # the placeholder became the reply: sent once
