"""Summarize / Translate under a finished transcript on Telegram (real PTB against FakeTelegram,
the fake chat-completions server): inline keyboard, callback query, a durable job replying to the
transcript, once per transcript + action + language; no llm route, no buttons."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model.job import JobKind, JobState
from testkit.fakes.audio import make_tone
from testkit.fakes.chat import FakeChat
from testkit.telegram_bot import USER, placeholder_job_id, running

pytestmark = pytest.mark.usefixtures("ptb_timedelta")
KEY = "test-chat-key"


def buttons(markup: object) -> list[str]:
    assert isinstance(markup, dict)
    return [b["callback_data"] for row in markup["inline_keyboard"] for b in row]


async def test_telegram_summarize_button_answers_once(tmp_path: Path, chat: FakeChat) -> None:
    brain = {"brain": {"type": "openai", "base_url": chat.url, "api_key": KEY}}
    llm = {"provider": "brain", "model": "gpt-4o-mini"}
    async with running(tmp_path, providers=brain, llm=llm) as w:
        w.tg.add_user(USER, "Ada", language_code="de")
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        job_id = placeholder_job_id(placeholder)
        assert placeholder.message is not None
        mid = placeholder.message["message_id"]
        transcript = await w.edit_of(mid)
        assert buttons(transcript.params.get("reply_markup")) == [f"sum:{job_id}", f"tr:{job_id}"]
        start = len(w.tg.calls)
        w.tg.press_button(USER, USER, mid, f"sum:{job_id}")
        toast = await w.tg.wait_for("answerCallbackQuery", start=start)
        assert str(toast.params.get("text")).startswith("Die Zusammenfassung wird erstellt")  # de
        working = await w.reply_to({"message_id": mid, "chat": {"id": USER}}, start=start)
        assert (working.text or "").startswith("📝 Wird zusammengefasst… Auftrag")
        summary_id = placeholder_job_id(working)
        assert working.message is not None
        answer = await w.edit_of(working.message["message_id"], start=start)
        assert (answer.text or "").startswith("Summary of ")
        assert "reply_markup" not in answer.params  # a summary gets no buttons of its own
        job = await w.delivered(summary_id)
        assert job.kind is JobKind.TEXT and job.state is JobState.COMPLETED
        start = len(w.tg.calls)
        w.tg.press_button(USER, USER, mid, f"sum:{job_id}")  # again: nothing is paid twice
        again = await w.tg.wait_for("answerCallbackQuery", start=start)
        assert f"schon erstellt: Auftrag {summary_id}" in str(again.params.get("text"))
    [sent] = chat.requests_to("chat")
    assert chat.submits["chat"] == 1
    assert "in German" in sent.json["messages"][0]["content"]  # the presser's language


async def test_telegram_no_llm_route_no_buttons(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        assert placeholder.message is not None
        transcript = await w.edit_of(placeholder.message["message_id"])
        assert "reply_markup" not in transcript.params


async def test_telegram_translate_command_replying_to_a_transcript(
    tmp_path: Path, chat: FakeChat
) -> None:
    brain = {"brain": {"type": "openai", "base_url": chat.url, "api_key": KEY}}
    llm = {"provider": "brain", "model": "gpt-4o-mini"}
    async with running(tmp_path, providers=brain, llm=llm) as w:
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        assert placeholder.message is not None
        mid = placeholder.message["message_id"]
        await w.delivered(placeholder_job_id(placeholder))
        command = w.tg.send_text(USER, USER, "/translate Japanese", reply_to=mid)
        working = await w.reply_to(command)
        assert (working.text or "").startswith("🌐 Translating… job")
        assert working.message is not None
        answer = await w.edit_of(working.message["message_id"])
        assert (answer.text or "").startswith("Summary of ")  # the fake's reply
        usage = await w.reply_to(w.tg.send_text(USER, USER, "/summarize"))
        assert "Reply to a transcript with /summarize" in (usage.text or "")
    [sent] = chat.requests_to("chat")
    assert "Translate this transcript into Japanese" in sent.json["messages"][0]["content"]
