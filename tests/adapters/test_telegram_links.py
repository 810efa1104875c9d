"""Links on Telegram (real PTB against FakeTelegram): the "🎙 Transcribe this link" offer under a
message with links, who may press it, and /transcribe's link forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit.fakes.media_site import MediaSite
from testkit.telegram_bot import ADMIN, GROUP, MEMBER, USER, placeholder_job_id, running

pytestmark = pytest.mark.usefixtures("ptb_timedelta")
TEST_SITE: dict[str, Any] = {"links": {"allowed_networks": ["127.0.0.1/32"]}}


def buttons(call: Any) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


async def test_telegram_links_message_with_a_link_gets_one_offer_and_nothing_is_fetched(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        sent = w.tg.send_text(USER, USER, "listen: https://media.test/talk.mp3 (great)")
        offer = await w.reply_to(sent)
        assert "nothing is downloaded unless you press" in (offer.text or "")
        [button] = buttons(offer)
        assert button == {"text": "🎙 Transcribe this link", "callback_data": "link:0"}
        await w.reply_to(w.tg.send_text(USER, USER, "/status"), start=len(w.tg.calls))
        await w.tg.wait_held()  # polling again: every update sent so far was handled
        offers = [c for c in w.tg.sent(USER) if buttons(c)]
        assert offers == [offer]  # one reply: no second offer, no download, no job
        assert await w.core.store.recent(limit=5) == []


async def test_telegram_links_several_links_get_a_numbered_button_each_up_to_three(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        text = " ".join(f"https://site{i}.test/ep{i}.mp3" for i in range(1, 5))
        offer = await w.reply_to(w.tg.send_text(USER, USER, text))
        assert [(b["text"], b["callback_data"]) for b in buttons(offer)] == [
            ("🎙 1. site1.test/ep1.mp3", "link:0"),
            ("🎙 2. site2.test/ep2.mp3", "link:1"),
            ("🎙 3. site3.test/ep3.mp3", "link:2"),
        ]


async def test_telegram_links_no_offer_where_automatic_answers_are_off_or_no_link(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        w.tg.add_chat(GROUP, title="Quiet")
        w.tg.set_member(GROUP, ADMIN, "administrator")
        await w.reply_to(w.tg.send_text(GROUP, ADMIN, "/autotranscribe off"))
        w.tg.send_text(GROUP, MEMBER, "https://media.test/talk.mp3")
        w.tg.send_text(USER, USER, "ftp://media.test/talk.mp3 and file:///etc/passwd")
        mark = w.mark()
        await w.reply_to(w.tg.send_text(USER, USER, "/status"), start=mark)
        await w.tg.wait_held()  # polling again: every update sent so far was handled
        assert not [c for c in w.tg.calls[mark:] if buttons(c) and "link:" in str(buttons(c))]


async def test_telegram_links_press_by_someone_else_is_refused_with_an_alert(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        w.tg.add_chat(GROUP, title="Podcasts")
        sent = w.tg.send_text(GROUP, USER, "https://media.test/talk.mp3")
        offer = await w.reply_to(sent)
        assert offer.message is not None
        mark = w.mark()
        w.tg.press_button(GROUP, MEMBER, offer.message["message_id"], "link:0")
        refused = await w.tg.wait_for("answerCallbackQuery", start=mark)
        assert refused.params.get("show_alert") in (True, "true", "True")
        assert "Only the person who sent this link" in str(refused.params.get("text"))
        assert await w.core.store.recent(limit=5) == []
        assert [b["callback_data"] for b in buttons(offer)] == ["link:0"]  # still there


async def test_telegram_links_a_forged_press_names_no_link(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        offer = await w.reply_to(w.tg.send_text(USER, USER, "https://media.test/a.mp3"))
        assert offer.message is not None
        mark = w.mark()
        w.tg.press_button(USER, USER, offer.message["message_id"], "link:7")
        refused = await w.tg.wait_for("answerCallbackQuery", start=mark)
        assert "no longer read the message" in str(refused.params.get("text"))
        assert await w.core.store.recent(limit=5) == []


async def test_telegram_links_transcribe_without_link_or_audio_says_how(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        answer = await w.reply_to(w.tg.send_text(USER, USER, "/transcribe"))
        assert "or send /transcribe followed by a link" in (answer.text or "")
        helped = await w.reply_to(w.tg.send_text(USER, USER, "/help"))
        assert "<code>/transcribe URL</code>" in (helped.text or "")
        menu = {c["command"]: c["description"] for c in w.tg.commands()}
        assert "/transcribe URL" in menu["transcribe"]


async def test_telegram_links_press_by_the_sender_transcribes_once_and_retires_the_offer(
    tmp_path: Path, site: MediaSite
) -> None:
    async with running(tmp_path, **TEST_SITE) as w:
        w.tg.add_chat(GROUP, title="Podcasts")
        link = f"{site.base}/audio.ogg"
        shared = w.tg.send_text(GROUP, USER, f"this one: {link}")
        offer = await w.reply_to(shared)
        assert offer.message is not None and site.total_requests == 0
        mark = w.mark()
        for _ in range(2):  # a double tap: one job, the second press told so
            w.tg.press_button(GROUP, USER, offer.message["message_id"], "link:0")
        placeholder = await w.reply_to(shared, start=mark)
        job = await w.delivered(placeholder_job_id(placeholder))
        assert job.origin.reply_to == str(shared["message_id"])  # under the link, not the offer
        assert placeholder.message is not None
        edit = await w.edit_of(placeholder.message["message_id"], chat=GROUP, start=mark)
        assert link in (edit.text or "") and "Fake transcript" in (edit.text or "")
        await w.tg.wait_for(lambda c: "already being" in str(c.params.get("text")), start=mark)
        answers = [c for c in w.tg.calls[mark:] if c.method == "answerCallbackQuery"]
        deleted = [c for c in w.tg.calls[mark:] if c.method == "deleteMessage"]
        assert [j.id for j in await w.core.store.recent(limit=5)] == [job.id]
    assert sorted(str(c.params.get("text", "")) for c in answers) == [
        "",
        "This link is already being transcribed.",
    ]
    assert [c.params["message_id"] for c in deleted] == [offer.message["message_id"]]


async def test_telegram_links_transcribe_command_takes_the_link_or_the_quoted_one(
    tmp_path: Path, site: MediaSite
) -> None:
    async with running(tmp_path, **TEST_SITE) as w:
        link = f"{site.base}/audio.ogg"
        command = w.tg.send_text(USER, USER, f"/transcribe {link}")
        first = await w.reply_to(command)
        await w.delivered(placeholder_job_id(first))
        shared = w.tg.send_text(USER, USER, f"{site.base}/song.mp3")
        await w.reply_to(shared)  # the offer
        mark = w.mark()
        w.tg.send_text(USER, USER, "/transcribe", reply_to=shared["message_id"])
        second = await w.tg.wait_for(
            lambda c: c.method == "sendMessage" and "<code>" in (c.text or ""), start=mark
        )
        job = await w.delivered(placeholder_job_id(second))
    assert job.origin.reply_to == str(shared["message_id"])
    assert job.options["link"]["url"].endswith("/song.mp3")


async def test_telegram_links_turned_off_no_offer_and_the_command_says_so(
    tmp_path: Path, site: MediaSite
) -> None:
    async with running(tmp_path, links={"enabled": False}) as w:
        mark = w.mark()
        w.tg.send_text(USER, USER, f"{site.base}/audio.ogg")
        answer = await w.reply_to(w.tg.send_text(USER, USER, f"/transcribe {site.base}/audio.ogg"))
        await w.tg.wait_held()  # polling again: every update sent so far was handled
        assert not [c for c in w.tg.calls[mark:] if buttons(c)]
    assert answer.text == "Links are turned off on this bot."
    assert site.total_requests == 0
