"""Telegram guest mode: calls from chats the bot is not a member of, answered through
``answerGuestQuery`` (real PTB ↔ FakeTelegram, real Core ↔ fake providers)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from telegram import Message

from adapters.telegram.guest import GUEST_NO_DM, GUEST_USAGE, spoken_text
from bot.model.errors import InputError
from bot.model.job import Job, NewJob
from bot.text import ENGLISH, msg
from testkit.fakes.audio import make_tone
from testkit.fakes.telegram import Call
from testkit.telegram_bot import GROUP, USER, World, running

pytestmark = pytest.mark.usefixtures("ptb_timedelta")

STRANGERS = -1009876543210  # a group that never added the bot


def _answers(w: World) -> list[Call]:
    return [c for c in w.tg.calls if c.method == "answerGuestQuery"]


async def _answered(w: World, query: str) -> Call:
    return await w.tg.wait_for(
        lambda c: c.method == "answerGuestQuery" and c.params.get("guest_query_id") == query
    )


async def _posted(w: World, query: str) -> str:
    """The text the query's answer shows once it holds a transcript (it starts as progress)."""
    for _ in range(200):
        answer = w.tg.guest_answers[query]
        text = str(w.tg.inline_messages[answer["inline_message_id"]]["text"]) if answer else ""
        if text.startswith("Fake transcript of"):
            return text
        await asyncio.sleep(0.05)
    raise TimeoutError(query)


async def _job_of(w: World, chat: int) -> str:
    """The one job of ``chat``, once stored (the answer goes out right before the write)."""
    for _ in range(200):
        jobs = await w.core.service.recent_jobs("telegram", str(chat))
        if jobs:
            assert len(jobs) == 1, jobs
            return jobs[0].id
        await asyncio.sleep(0.05)
    raise TimeoutError(chat)


async def test_telegram_guest_call_on_a_voice_note_is_answered_with_its_transcript(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        voice = w.tg.post_unseen_voice(STRANGERS, USER, make_tone(1.0))
        call = w.tg.send_guest(STRANGERS, USER, reply_to=voice["message_id"])
        query = call["guest_query_id"]
        placeholder = await _answered(w, query)
        assert placeholder.status == 200
        result = placeholder.params["result"]
        assert result["type"] == "article"
        assert "Transcribing" in result["input_message_content"]["message_text"]
        job = await w.delivered(await _job_of(w, STRANGERS))
        answer = w.tg.guest_answers[query]
        assert answer is not None and job.delivery_message_id == answer["inline_message_id"]
        posted = w.tg.inline_messages[answer["inline_message_id"]]
        assert posted["text"].startswith("Fake transcript of")
        assert len(_answers(w)) == 1  # the query is answered once; the transcript is an edit
        assert w.tg.sent(STRANGERS) == []  # nothing sent as a member of that chat
        assert w.tg.downloads == 1 and w.nano.submits["transcribe"] == 1
        usage = await w.core.store.usage.usage(0.0, platform="telegram")
        assert [row["jobs"] for row in usage] == [1]  # costs recorded as for any job


async def test_telegram_guest_call_on_a_voice_note_it_is_pays_once(tmp_path: Path) -> None:
    """A second call on the same voice note reuses the transcript: one provider call."""
    async with running(tmp_path) as w:
        voice = w.tg.post_unseen_voice(STRANGERS, USER, make_tone(1.0))
        first = w.tg.send_guest(STRANGERS, USER, reply_to=voice["message_id"])
        await w.delivered(await _job_of(w, STRANGERS))
        second = w.tg.send_guest(STRANGERS, USER, reply_to=voice["message_id"])
        assert await _posted(w, second["guest_query_id"]) == await _posted(
            w, first["guest_query_id"]
        )
        assert w.nano.submits["transcribe"] == 1


async def test_telegram_guest_call_with_text_is_answered_with_a_voice(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        call = w.tg.send_guest(STRANGERS, USER, "@voicebot_test_bot hello there")
        answer = await _answered(w, call["guest_query_id"])
        assert answer.status == 200
        result = answer.params["result"]
        assert result["type"] == "voice"
        uploaded = [c for c in w.tg.sent(USER) if c.method == "sendVoice"]
        assert len(uploaded) == 1 and uploaded[0].message is not None
        assert result["voice_file_id"] == uploaded[0].message["voice"]["file_id"]
        await w.delivered(await _job_of(w, STRANGERS))
        assert len(_answers(w)) == 1


async def test_telegram_guest_call_with_the_same_text_again_sends_the_kept_voice(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        first = w.tg.send_guest(STRANGERS, USER, "@voicebot_test_bot hello there")
        before = (await _answered(w, first["guest_query_id"])).params["result"]
        await w.delivered(await _job_of(w, STRANGERS))
        again = w.tg.send_guest(STRANGERS, USER, "@voicebot_test_bot hello there")
        after = (await _answered(w, again["guest_query_id"])).params["result"]
        # Answered with the voice Telegram keeps: not synthesized, not uploaded again.
        assert after["voice_file_id"] == before["voice_file_id"]
        assert len([c for c in w.tg.sent(USER) if c.method == "sendVoice"]) == 1
        assert len(w.nano.requests_to("tts")) == 1


async def test_telegram_guest_speak_without_a_private_chat_says_how(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        w.tg.block(USER)  # Forbidden, as for a user who never pressed Start
        call = w.tg.send_guest(STRANGERS, USER, "@voicebot_test_bot /speak hello")
        answer = await _answered(w, call["guest_query_id"])
        text = answer.params["result"]["input_message_content"]["message_text"]
        assert text == ENGLISH.render(GUEST_NO_DM)


async def test_telegram_guest_call_without_a_voice_note_says_how_to_use_it(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        call = w.tg.send_guest(STRANGERS, USER)  # just "@bot": nothing to read or hear
        answer = await _answered(w, call["guest_query_id"])
        text = answer.params["result"]["input_message_content"]["message_text"]
        assert text == ENGLISH.render(GUEST_USAGE)
        assert await w.core.service.recent_jobs("telegram", str(STRANGERS)) == []


async def test_telegram_guest_transcript_retried_after_a_failed_edit_answers_once(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        w.tg.fail("editMessageText", 500, times=1)
        voice = w.tg.post_unseen_voice(GROUP, USER, make_tone(1.0))
        call = w.tg.send_guest(GROUP, USER, reply_to=voice["message_id"])
        await w.delivered(await _job_of(w, GROUP))
        await _posted(w, call["guest_query_id"])
        edits = [c for c in w.tg.calls if c.method == "editMessageText"]
        assert any(c.status == 500 for c in edits) and edits[-1].status == 200
        assert len(_answers(w)) == 1


async def test_telegram_guest_refusal_after_the_answer_replaces_it(tmp_path: Path) -> None:
    """The store refusing the job after the query was answered: that one answer says why."""
    async with running(tmp_path) as w:

        async def refused(new: NewJob, **kwargs: Any) -> Job:
            raise InputError(msg("Too many jobs in this chat right now."))

        w.core.store.create = refused  # type: ignore[method-assign]
        voice = w.tg.post_unseen_voice(STRANGERS, USER, make_tone(1.0))
        call = w.tg.send_guest(STRANGERS, USER, reply_to=voice["message_id"])
        await _answered(w, call["guest_query_id"])
        edit = await w.tg.wait_for(
            lambda c: c.method == "editMessageText" and "Too many" in (c.text or "")
        )
        answer = w.tg.guest_answers[call["guest_query_id"]]
        assert (
            answer is not None and edit.params["inline_message_id"] == answer["inline_message_id"]
        )
        assert len(_answers(w)) == 1


def test_telegram_guest_spoken_text_drops_mentions_and_speak() -> None:
    def message(text: str) -> Message:
        data = {
            "message_id": 1, "date": 0, "chat": {"id": -1, "type": "supergroup", "title": "g"},
            "text": text, "guest_query_id": "q",
        }  # fmt: skip
        parsed = Message.de_json(data, None)
        assert parsed is not None and parsed.guest_query_id == "q"
        return parsed

    assert spoken_text(message("@voicebot_test_bot read this")) == "read this"
    assert spoken_text(message("/speak@voicebot_test_bot hi @voicebot_test_bot")) == "hi"
    assert spoken_text(message("@voicebot_test_bot")) == ""
    assert spoken_text(message("@voicebot_test_bot /transcribe")) == ""
