"""Pure Telegram conversions, from payload dicts built into real PTB objects (Update.de_json)."""

from __future__ import annotations

import datetime as dtm
import html
from typing import Any

import pytest
from telegram import Bot, Message, Update
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TimedOut

from adapters.telegram.convert import (
    audio_attachment,
    code_job_id,
    command_args,
    delivery_error,
    escape,
    megabytes,
    origin_for,
    seconds,
    voice_duration,
)
from bot.model.speech import Origin

BOT = Bot("123456:TEST-token")
USER = {"id": 42, "is_bot": False, "first_name": "Ann"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Ann"}
GROUP = {"id": -100123, "type": "supergroup", "title": "Lab", "is_forum": True}


def message(content: dict[str, Any], chat: dict[str, Any] = PRIVATE, **extra: Any) -> Message:
    payload = {"message_id": 7, "date": 0, "chat": chat, "from": USER, **content, **extra}
    update = Update.de_json({"update_id": 1, "message": payload}, BOT)
    assert update is not None and update.message is not None
    return update.message


def file(**extra: Any) -> dict[str, Any]:
    return {"file_id": "F1", "file_unique_id": "U1", "file_size": 1234, **extra}


def test_convert_voice_audio_video_note_and_audio_document_are_audio() -> None:
    voice = audio_attachment(message({"voice": file(duration=3, mime_type="audio/ogg")}))
    assert voice is not None
    assert (voice.file_id, voice.file_unique_id, voice.file_size, voice.filename, voice.kind) == (
        "F1",
        "U1",
        1234,
        "voice.ogg",
        "voice",
    )
    audio = audio_attachment(message({"audio": file(duration=3, file_name="memo.m4a")}))
    assert audio is not None and audio.filename == "memo.m4a" and audio.kind == "audio"
    unnamed = audio_attachment(message({"audio": file(duration=3, mime_type="audio/mpeg")}))
    assert unnamed is not None and unnamed.filename == "audio.mp3"
    note = audio_attachment(message({"video_note": file(duration=2, length=240)}))
    assert note is not None and note.kind == "video_note" and note.filename.endswith(".mp4")
    doc = audio_attachment(message({"document": file(mime_type="audio/wav", file_name="a.wav")}))
    assert doc is not None and doc.kind == "document" and doc.filename == "a.wav"
    by_suffix = audio_attachment(
        message({"document": file(mime_type="application/octet-stream", file_name="x.opus")})
    )
    assert by_suffix is not None and by_suffix.filename == "x.opus"


@pytest.mark.parametrize(
    "content",
    [
        {"text": "hello"},
        {"document": file(mime_type="application/pdf", file_name="paper.pdf")},
        {"document": file(mime_type="image/png", file_name="cover.mp3")},
        {"photo": [{"file_id": "P", "file_unique_id": "PU", "width": 1, "height": 1}]},
    ],
)
def test_convert_non_audio_messages_have_no_attachment(content: dict[str, Any]) -> None:
    assert audio_attachment(message(content)) is None
    assert audio_attachment(None) is None


def test_convert_origin_replies_to_the_audio_message_in_its_topic() -> None:
    voice = message({"voice": file(duration=1)}, GROUP, message_id=5)
    command = message(
        {"text": "/transcribe"},
        GROUP,
        message_id=9,
        message_thread_id=77,
        is_topic_message=True,
    )
    assert origin_for(command, reply_to=voice) == Origin(
        platform="telegram", chat_id="-100123", user_id="42", reply_to="5", thread_id="77"
    )
    assert origin_for(voice).reply_to == "5" and origin_for(voice).thread_id is None


def test_convert_command_args_keep_newlines_and_drop_bot_mention() -> None:
    text = "/speak@voicebot_test_bot Hello\nsecond line "
    entity = {"type": "bot_command", "offset": 0, "length": len("/speak@voicebot_test_bot")}
    assert command_args(message({"text": text, "entities": [entity]})) == "Hello\nsecond line"
    plain = {"type": "bot_command", "offset": 0, "length": 7}
    assert command_args(message({"text": "/status", "entities": [plain]})) == ""


def test_convert_durations_and_sizes() -> None:
    assert seconds(3) == 3.0
    assert seconds(dtm.timedelta(seconds=2.5)) == 2.5
    assert seconds(None) is None
    assert voice_duration(0.4) == 1
    assert voice_duration(2.0) == 2
    assert voice_duration(2.01) == 3
    assert megabytes(20 * 1024 * 1024) == "20 MB"
    assert megabytes(25 * 1024 * 1024 + 300_000) == "25.3 MB"


def test_convert_escape_for_html_parse_mode() -> None:
    raw = "<b>not bold</b> & *not* _italic_"
    escaped = escape(raw)
    assert "<" not in escaped and html.unescape(escaped) == raw
    shown = code_job_id("🎙 Transcribing… job ab12cd <x>", "ab12cd")
    assert shown == "🎙 Transcribing… job <code>ab12cd</code> &lt;x&gt;"


def test_telegram_delivery_error_tells_flood_waits_refusals_and_transient_failures() -> None:
    flood = delivery_error(RetryAfter(dtm.timedelta(seconds=7)))
    assert (flood.retry_after, flood.permanent) == (7.0, False)
    assert delivery_error(Forbidden("Forbidden: bot was blocked by the user")).permanent
    assert delivery_error(ChatMigrated(-100999)).permanent
    assert delivery_error(BadRequest("Chat not found")).permanent
    too_long = delivery_error(BadRequest("Message is too long"))
    assert not too_long.permanent and too_long.retry_after is None
    assert not delivery_error(TimedOut()).permanent
    assert str(delivery_error(TimedOut())).startswith("telegram error:")
