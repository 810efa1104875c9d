"""The Telegram adapter in one loop: real PTB ↔ FakeTelegram, real Core ↔ fake providers."""

from __future__ import annotations

import html
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.model.errors import DeliveryError
from bot.model.job import Job, JobState, NewJob
from bot.model.speech import Origin
from testkit.fakes.audio import decode_info, make_tone
from testkit.support import reply_for
from testkit.telegram_bot import (
    ADMIN,
    GROUP,
    MEMBER,
    OTHER,
    USER,
    placeholder_job_id,
    running,
    transcript_answer,
)

pytestmark = pytest.mark.usefixtures("ptb_timedelta")


async def test_telegram_voice_note_gets_placeholder_then_transcript(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        assert {c["command"] for c in w.tg.commands()} >= {"speak", "transcribe", "status"}
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        assert placeholder.method == "sendMessage"
        assert placeholder.text is not None and placeholder.text.startswith("🎙 Transcribing… job")
        assert placeholder.params["parse_mode"] == "HTML"
        job_id = placeholder_job_id(placeholder)
        assert placeholder.message is not None
        edit = await w.edit_of(placeholder.message["message_id"])
        assert edit.text is not None and edit.text.startswith("Fake transcript of")
        job = await w.delivered(job_id)
        assert job.delivery_message_id == str(placeholder.message["message_id"])
        actions = [c for c in w.tg.sent(USER, actions=True) if c.method == "sendChatAction"]
        assert actions and actions[0].params["action"] == "typing"
        assert w.tg.downloads == 1 and w.nano.submits["transcribe"] == 1
        assert not w.adapter.actions.active(str(USER))
        sent_texts = [c.method for c in w.tg.sent(USER)]
        assert sent_texts == ["sendMessage", "editMessageText"]  # one reply, edited in place


async def test_telegram_job_is_stored_with_its_placeholder_in_one_write(tmp_path: Path) -> None:
    """The placeholder is sent before the job is stored: the job as created carries its id and
    shows the id it is stored under; nothing is written back afterwards."""
    async with running(tmp_path) as w:
        created: list[Job] = []
        create = w.core.store.create

        async def recorded(new: NewJob, **kwargs: Any) -> Job:
            created.append(await create(new, **kwargs))
            return created[-1]

        w.core.store.create = recorded  # type: ignore[method-assign]
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        job = await w.delivered(placeholder_job_id(placeholder))
    assert placeholder.message is not None
    message_id = str(placeholder.message["message_id"])
    [first] = created
    assert first.id == job.id and first.origin.placeholder_id == message_id
    assert job.progress_message_id is None and job.placeholder_id == message_id
    assert f"cancel:{job.id}" in str(placeholder.params.get("reply_markup"))


async def test_telegram_refused_speech_gets_no_placeholder(tmp_path: Path) -> None:
    """Every check runs before the placeholder is sent: a refusal is the only answer."""
    async with running(tmp_path) as w:
        asked = w.tg.send_text(USER, USER, "/speak " + "x" * 100_000)
        answer = await w.reply_to(asked)
        assert answer.text is not None and "…" not in answer.text
        assert [c.method for c in w.tg.sent(USER)] == ["sendMessage"]
        assert await w.core.service.recent_jobs("telegram", str(USER)) == []


async def test_telegram_menu_lists_the_commands_in_order(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        menu = [c["command"] for c in w.tg.commands()]
        german = [c["command"] for c in w.tg.commands(language_code="de")]
    assert menu == [
        "transcribe",
        "speak",
        "status",
        "cancel",
        "summarize",
        "translate",
        "settings",
        "language",
        "voices",
        "diarize",
        "voice",
        "autotranscribe",
        "forget",
        "help",
    ]
    assert german == menu  # one table: every language lists the same commands


async def test_telegram_async_diarized_transcript(tmp_path: Path) -> None:
    async with running(tmp_path, stt={"model": "Elevenlabs-STT"}) as w:
        asked = w.tg.send_text(USER, USER, "/diarize on")
        saved = await w.reply_to(asked)
        assert saved.text is not None and "diarize: on" in saved.text
        voice = w.tg.send_voice(USER, USER, make_tone(2.0), duration=2)
        placeholder = await w.reply_to(voice)
        assert placeholder.message is not None
        edit = await w.edit_of(placeholder.message["message_id"])
        assert edit.text is not None
        assert "Speaker 1:" in edit.text and "Speaker 2:" in edit.text
        assert w.nano.requests_to("transcribe")[0].form["diarize"] == "true"
        assert w.nano.submits["transcribe"] == 1


async def test_telegram_group_autotranscribe_off_then_transcribe_on_demand(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        w.tg.add_chat(GROUP, title="Voice lab")
        w.tg.set_member(GROUP, ADMIN, "administrator")
        refused = w.tg.send_text(GROUP, MEMBER, "/autotranscribe off")
        answer = await w.reply_to(refused)
        assert answer.text == "Only this group's admins can change its settings."
        settings = await w.core.service.settings("telegram", str(GROUP))
        assert settings.auto_transcribe is True
        asked = w.tg.send_text(GROUP, ADMIN, "/autotranscribe@voicebot_test_bot off")
        saved = await w.reply_to(asked)
        assert saved.text is not None and "autotranscribe: off" in saved.text
        voice = w.tg.send_voice(GROUP, MEMBER, make_tone(1.0), duration=1)
        await w.tg.wait_fetched()
        command = w.tg.send_text(GROUP, MEMBER, "/transcribe", reply_to=voice["message_id"])
        placeholder = await w.reply_to(voice)  # the transcript answers the voice note itself
        assert placeholder.message is not None
        edit = await w.edit_of(placeholder.message["message_id"], chat=GROUP)
        assert edit.text is not None and edit.text.startswith("Fake transcript")
        assert w.tg.downloads == 1  # the voice note alone was not transcribed
        assert len(await w.core.service.recent_jobs("telegram", str(GROUP))) == 1
        lonely = w.tg.send_text(GROUP, MEMBER, "/transcribe")
        usage = await w.reply_to(lonely)
        assert usage.text is not None and "Reply to a voice note" in usage.text
        assert command["message_id"] != voice["message_id"]


async def test_telegram_private_settings_and_help(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        shown = await w.reply_to(w.tg.send_text(USER, USER, "/settings"))
        assert shown.text is not None and "language: automatic (default)" in shown.text
        bad = await w.reply_to(w.tg.send_text(USER, USER, "/settings language klingon!"))
        assert bad.text is not None and "is not a language I know" in bad.text
        ok = await w.reply_to(w.tg.send_text(USER, USER, "/settings language de"))
        assert ok.text is not None and "language: German (de) (this chat)" in ok.text
        voice = await w.reply_to(w.tg.send_text(USER, USER, "/voice am_adam"))
        assert voice.text is not None and "voice: am_adam" in voice.text
        helped = await w.reply_to(w.tg.send_text(USER, USER, "/start"))
        assert helped.text is not None and "/speak" in helped.text and "20 MB" in helped.text


async def test_telegram_speak_sends_ogg_opus_voice_with_duration(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        asked = w.tg.send_text(USER, USER, "/speak Hello there, how are you?")
        voice = await w.tg.wait_for("sendVoice")
        assert voice.params["reply_parameters"]["message_id"] == asked["message_id"]
        assert voice.upload is not None
        fmt, codec, duration, rate, channels = decode_info(voice.upload.data)
        assert (fmt, codec, rate, channels) == ("ogg", "opus", 48000, 1)
        assert voice.params["duration"] == math.ceil(duration - 1e-6) >= 1
        await w.tg.wait_for("deleteMessage")  # the "Synthesizing…" placeholder is gone
        assert [m.get("voice") is not None for m in w.tg.messages(USER)] == [False, True]
        assert w.nano.requests_to("tts")[0].json["text"] == "Hello there, how are you?"


async def test_telegram_speak_usage_and_reply_to_text(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        usage = await w.reply_to(w.tg.send_text(USER, USER, "/speak"))
        assert usage.text is not None and "/speak Hello there" in usage.text
        quoted = w.tg.send_text(USER, USER, "Read <this> aloud")
        asked = w.tg.send_text(USER, USER, "/speak", reply_to=quoted["message_id"])
        await w.tg.wait_for("sendVoice")
        assert w.nano.requests_to("tts")[0].json["text"] == "Read <this> aloud"
        assert asked["message_id"] > quoted["message_id"]


async def test_telegram_status_is_scoped_to_the_chat(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        job_id = placeholder_job_id(await w.reply_to(voice))
        await w.delivered(job_id)
        listed = await w.reply_to(w.tg.send_text(USER, USER, "/status"))
        assert listed.text is not None and job_id in listed.text
        one = await w.reply_to(w.tg.send_text(USER, USER, f"/status {job_id}"))
        assert one.text is not None and f"Job {job_id}" in one.text and "done" in one.text
        foreign = await w.reply_to(w.tg.send_text(OTHER, OTHER, f"/status {job_id}"))
        assert (
            foreign.text == f"No job {job_id} in this chat. Use /status to list this chat's jobs."
        )
        empty = await w.reply_to(w.tg.send_text(OTHER, OTHER, "/status"))
        assert empty.text is not None and job_id not in empty.text


async def test_telegram_long_transcript_is_split_at_words(tmp_path: Path) -> None:
    words = [f"word{i:04d}" for i in range(700)]  # ~6,300 characters: two messages
    async with running(tmp_path) as w:
        w.nano.push("transcribe", 200, transcript_answer(" ".join(words)))
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        job_id = placeholder_job_id(placeholder)
        await w.delivered(job_id)
        parts = [c.text or "" for c in w.tg.sent(USER)[1:]]
        assert [c.method for c in w.tg.sent(USER)] == [
            "sendMessage",
            "editMessageText",
            "sendMessage",
        ]
        assert all(len(p) <= 4096 for p in parts)
        assert " ".join(parts).split() == words  # nothing lost, no word cut in half


async def test_telegram_very_long_transcript_becomes_txt_and_srt(tmp_path: Path) -> None:
    text = " ".join(f"word{i:04d}" for i in range(500))  # ~4,500 chars: 2 parts > max 1
    segment = {"speaker": None, "text": text, "start": 0.0, "end": 4.0}
    answer = transcript_answer(text, diarization={"segments": [segment]})
    async with running(tmp_path, telegram={"max_messages": 1}) as w:
        w.nano.push("transcribe", 200, answer)
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        await w.delivered(placeholder_job_id(placeholder))
        docs = [c for c in w.tg.sent(USER) if c.method == "sendDocument"]
        names = [c.upload.filename if c.upload else None for c in docs]
        assert [n.rsplit(".", 1)[1] if n else None for n in names] == ["txt", "srt"]
        assert docs[0].upload is not None and docs[0].upload.data.decode().strip() == text
        assert all(d.params["reply_parameters"]["message_id"] == voice["message_id"] for d in docs)
        note = [c for c in w.tg.sent(USER) if c.method == "editMessageText"][-1]
        assert note.text is not None and "attached as a file" in note.text


async def test_telegram_transcript_markup_is_escaped(tmp_path: Path) -> None:
    raw = "<b>not bold</b> & *not bold either* <a href='x'>y</a>"
    async with running(tmp_path) as w:
        w.nano.push("transcribe", 200, transcript_answer(raw))
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        assert placeholder.message is not None
        edit = await w.edit_of(placeholder.message["message_id"])
        assert edit.params["parse_mode"] == "HTML"
        assert edit.text is not None and "<" not in edit.text
        assert html.unescape(edit.text) == raw


async def test_telegram_file_over_limit_is_refused_without_download(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        big = w.tg.send_voice(USER, USER, b"OggS tiny", file_size=25 * 1024 * 1024)
        answer = await w.reply_to(big)
        assert answer.text is not None
        assert "25 MB" in answer.text and "20 MB" in answer.text
        assert "local Bot API server" in answer.text
        assert w.tg.downloads == 0
        assert not [c for c in w.tg.calls if c.method == "getFile"]


async def test_telegram_broken_audio_gets_the_reason(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        voice = w.tg.send_voice(USER, USER, b"definitely not audio" * 10)
        answer = await w.reply_to(voice)
        assert answer.text is not None and "…" not in answer.text
        assert w.nano.submits["transcribe"] == 0
        again = await w.reply_to(w.tg.send_text(USER, USER, "/status"))  # still running
        assert again.ok


async def test_telegram_same_file_is_answered_from_the_stored_transcript(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        first = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        job_id = placeholder_job_id(await w.reply_to(first))
        done = await w.delivered(job_id)
        assert done.transcript is not None
        # The same file forwarded again: Telegram keeps its file_unique_id.
        again = w.tg._user_message(USER, USER, None, {"voice": first["voice"]})
        reply = await w.reply_to(again)
        assert reply.text is not None and reply.text.startswith("Fake transcript")
        assert w.nano.submits["transcribe"] == 1
        jobs = await w.core.service.recent_jobs("telegram", str(USER))
        assert len(jobs) == 2 and jobs[0].options["reused_from"] == job_id


async def test_telegram_deliver_maps_platform_refusals(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        origin = Origin("telegram", str(USER), str(USER), reply_to="999")
        job = await w.core.service.speak(origin, "hi")
        failed = replace(job, state=JobState.FAILED, error="Nope.")
        # The original message is gone: the reply still arrives.
        first = await w.adapter.deliver(reply_for(failed))
        assert first is not None
        sent = w.tg.sent(USER)[-1]
        assert sent.params["reply_parameters"]["allow_sending_without_reply"] is True
        assert sent.text is not None and "Nope." in sent.text
        # The placeholder was deleted: a new reply replaces the edit.
        gone = replace(failed, progress_message_id="555")
        assert await w.adapter.deliver(reply_for(gone)) == str(int(first) + 1)
        w.tg.fail("sendMessage", 429, retry_after=7)
        with pytest.raises(DeliveryError) as flood:
            await w.adapter.deliver(reply_for(failed))
        assert flood.value.retry_after == 7 and not flood.value.permanent
        w.tg.fail("sendMessage", 400, "Bad Request: chat not found")
        with pytest.raises(DeliveryError) as missing:
            await w.adapter.deliver(reply_for(failed))
        assert missing.value.permanent
        w.tg.block(USER)
        with pytest.raises(DeliveryError) as blocked:
            await w.adapter.deliver(reply_for(failed))
        assert blocked.value.permanent


async def test_telegram_blocked_user_is_not_retried(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        asked = w.tg.send_text(USER, USER, "/speak hello")
        placeholder = await w.reply_to(asked)
        w.tg.block(USER)
        job = await w.delivered(placeholder_job_id(placeholder))
        assert job.delivery_error is not None and "blocked" in job.delivery_error
        assert job.delivered_at is None


async def test_telegram_async_speech_shows_queue_position_then_voice(tmp_path: Path) -> None:
    async with running(tmp_path, tts={"model": "Elevenlabs-V3"}) as w:
        w.nano.polls_to_complete = 2  # first poll: pending with a queue position
        asked = w.tg.send_text(USER, USER, "/speak Hello from the queue")
        placeholder = await w.reply_to(asked)
        assert placeholder.text is not None and placeholder.text.startswith("🔊 Synthesizing…")
        assert placeholder.message is not None
        queued = await w.tg.wait_for(
            lambda c: c.method == "editMessageText" and "queue position 1" in (c.text or "")
        )
        assert queued.params["message_id"] == placeholder.message["message_id"]
        voice = await w.tg.wait_for("sendVoice")
        assert voice.params["reply_parameters"]["message_id"] == asked["message_id"]
        assert voice.upload is not None and voice.upload.data.startswith(b"OggS")
        actions = {
            c.params["action"]
            for c in w.tg.sent(USER, actions=True)
            if c.method == "sendChatAction"
        }
        assert actions == {"record_voice"}


async def test_telegram_access_lists_usage_and_forget(tmp_path: Path) -> None:
    access = {"admins": [f"telegram:user:{USER}"], "deny": [f"telegram:user:{OTHER}"]}
    async with running(tmp_path, access=access) as w:
        w.tg.send_voice(OTHER, OTHER, make_tone(1.0), duration=1)  # denied: silence
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        job_id = placeholder_job_id(await w.reply_to(voice))
        await w.delivered(job_id)
        assert w.tg.downloads == 1 and w.tg.sent(OTHER) == []
        usage = await w.reply_to(w.tg.send_text(USER, USER, "/usage"))
        assert usage.text is not None and usage.text.startswith("<pre>Today (UTC):")
        assert f"chat {USER} user {USER}: 1 job," in usage.text
        w.tg.add_chat(GROUP)
        refused = await w.reply_to(w.tg.send_text(GROUP, MEMBER, "/usage"))
        assert refused.text is not None and "Only the bot's admins" in refused.text
        forgot = await w.reply_to(w.tg.send_text(USER, USER, "/forget"))
        assert forgot.text is not None and forgot.text.startswith("Deleted 1 of your jobs")
        assert await w.core.service.recent_jobs("telegram", str(USER)) == []


async def test_telegram_get_file_refused_says_the_file_cannot_be_fetched(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        w.tg.fail("getFile", 400, "Bad Request: invalid file_id")
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        answer = await w.reply_to(voice)
        assert answer.text is not None
        assert "couldn't fetch this file from Telegram" in answer.text
        assert "went wrong" not in answer.text
        assert w.nano.submits["transcribe"] == 0


async def test_telegram_unreadable_update_is_skipped_and_the_bot_answers_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as w:
        # A message without "date": python-telegram-bot cannot build it (KeyError).
        w.tg._push_update({"message": {"message_id": 999, "chat": {"id": USER, "type": "private"}}})
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        assert placeholder.text is not None and "Transcribing" in placeholder.text
        assert "skipping update" in caplog.text


async def test_telegram_same_speak_sends_the_stored_voice_without_uploading(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        first = w.tg.send_text(USER, USER, "/speak Hello there")
        job_id = placeholder_job_id(await w.reply_to(first))
        done = await w.delivered(job_id)
        file_id = done.extra["telegram_voice_file"]
        again = await w.reply_to(w.tg.send_text(USER, USER, "/speak Hello there"))
        # No placeholder, no provider request, no upload: the voice Telegram already keeps.
        assert again.method == "sendVoice" and again.upload is None
        assert again.params["voice"] == file_id and again.params["duration"] >= 1
        assert len(w.nano.requests_to("tts")) == 1
        assert [m.get("voice") is not None for m in w.tg.messages(USER)][-1]
        await w.reply_to(w.tg.send_text(USER, USER, "/voice am_adam"))
        other = await w.reply_to(w.tg.send_text(USER, USER, "/speak Hello there"))
        assert other.method == "sendMessage"  # a new job's placeholder: synthesized anew
        await w.delivered(placeholder_job_id(other))
        assert [r.json["voice"] for r in w.nano.requests_to("tts")] == ["af_bella", "am_adam"]


async def test_telegram_same_speak_uploads_the_stored_clip_when_its_file_is_gone(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        first = w.tg.send_text(USER, USER, "/speak Hello there")
        done = await w.delivered(placeholder_job_id(await w.reply_to(first)))
        gone = {**done.extra, "telegram_voice_file": "no-such-file"}
        await w.core.store.update_extra(done.id, gone, done.updated_at)
        again = w.tg.send_text(USER, USER, "/speak Hello there")
        voice = await w.tg.wait_for(
            lambda c: c.method == "sendVoice" and c.status == 200 and c.upload is not None,
            start=len(w.tg.calls) - 1,
        )
        assert voice.params["reply_parameters"]["message_id"] == again["message_id"]
        uploads = [c.upload.data for c in w.tg.calls if c.method == "sendVoice" and c.upload]
        assert len(uploads) == 2 and uploads[0] == uploads[1]  # the stored clip, not a new one
        assert len(w.nano.requests_to("tts")) == 1
