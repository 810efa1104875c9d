"""The fake Telegram Bot API (testkit/fakes/telegram.py) driven by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    ChatMemberAdministrator,
    ChatMemberOwner,
    InlineQueryResultArticle,
    InputTextMessageContent,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from testkit.fakes.audio import make_tone
from testkit.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.usefixtures("ptb_timedelta")

USER = 42
GROUP = -1001234567890


def _builder(
    tg: FakeTelegram, token: str | None = None
) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    return (
        ApplicationBuilder()
        .token(token or tg.token)
        .base_url(f"{tg.api_base}/bot")
        .base_file_url(f"{tg.api_base}/file/bot")
    )


def _bot(tg: FakeTelegram) -> Bot:
    return Bot(tg.token, base_url=f"{tg.api_base}/bot", base_file_url=f"{tg.api_base}/file/bot")


@asynccontextmanager
async def _polling(app: Application[Any, Any, Any, Any, Any, Any]) -> AsyncIterator[None]:
    """The manual lifecycle the adapter uses (never run_polling): start, then stop in reverse."""
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def _ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    await update.message.reply_text(f"pong {' '.join(context.args or [])}".strip(), do_quote=True)


async def test_fake_telegram_ping_command_reaches_handler_and_reply_is_recorded(
    tg: FakeTelegram,
) -> None:
    app = _builder(tg).rate_limiter(AIORateLimiter()).build()
    app.add_handler(CommandHandler("ping", _ping))
    async with _polling(app):
        asked = tg.send_text(USER, USER, "/ping")
        call = await tg.wait_for("sendMessage")

    assert call.chat_id == USER
    assert call.params["text"] == "pong"
    assert call.params["reply_parameters"]["message_id"] == asked["message_id"]
    reply = call.message
    assert reply is not None
    assert reply["from"]["username"] == "voicebot_test_bot"
    assert reply["message_id"] == asked["message_id"] + 1
    assert reply["reply_to_message"]["text"] == "/ping"
    assert [c.method for c in tg.sent(USER)] == ["sendMessage"]
    assert [m["message_id"] for m in tg.messages(USER)] == [1, 2]
    assert tg.pending_updates() == []  # the updater confirmed the update on shutdown


async def test_fake_telegram_group_command_needs_this_bots_username(tg: FakeTelegram) -> None:
    tg.add_chat(GROUP, type="supergroup", title="Voice lab")
    app = _builder(tg).build()
    app.add_handler(CommandHandler("ping", _ping))
    async with _polling(app):
        tg.send_text(GROUP, 7, "/ping@someone_else_bot nope")
        asked = tg.send_text(GROUP, 7, "/ping@voicebot_test_bot hello there")
        call = await tg.wait_for("sendMessage")
        await tg.wait_fetched()

    assert call.chat_id == GROUP
    assert call.params["text"] == "pong hello there"
    assert call.params["reply_parameters"]["message_id"] == asked["message_id"]
    assert call.message is not None and call.message["chat"]["title"] == "Voice lab"
    assert len(tg.sent(GROUP)) == 1  # the command addressed to another bot was ignored


async def test_fake_telegram_voice_note_downloads_through_get_file(tg: FakeTelegram) -> None:
    ogg = make_tone(0.3)
    got: asyncio.Future[tuple[bytes, object]] = asyncio.get_running_loop().create_future()

    async def on_voice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.voice is not None
        voice = update.message.voice
        data = await (await context.bot.get_file(voice.file_id)).download_as_bytearray()
        got.set_result((bytes(data), voice.duration))

    app = _builder(tg).build()
    app.add_handler(MessageHandler(filters.VOICE, on_voice))
    async with _polling(app):
        tg.send_voice(USER, USER, ogg, duration=3)
        data, duration = await asyncio.wait_for(got, 10)

    assert data == ogg
    assert duration == dtm.timedelta(seconds=3)
    assert tg.downloads == 1
    assert [c.method for c in tg.calls if c.method == "getFile"] == ["getFile"]


async def test_fake_telegram_refuses_big_files_without_downloading(tg: FakeTelegram) -> None:
    file_id, _ = tg.add_file(b"tiny", file_size=25 * 1024 * 1024)
    async with _bot(tg) as bot:
        with pytest.raises(BadRequest, match="too big"):
            await bot.get_file(file_id)
        with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
            await bot.get_file("nope")
    assert tg.downloads == 0


async def test_fake_telegram_records_send_voice_upload(tg: FakeTelegram) -> None:
    ogg = make_tone(0.5)
    asked = tg.send_text(USER, USER, "say hi")
    async with _bot(tg) as bot:
        sent = await bot.send_voice(
            USER,
            ogg,
            duration=2,
            caption="hi",
            filename="speech.ogg",
            reply_parameters=ReplyParameters(asked["message_id"]),
        )

    call = await tg.wait_for("sendVoice")
    assert call.upload is not None
    assert call.upload.data == ogg
    assert call.upload.filename == "speech.ogg"
    assert call.upload.content_type == "audio/ogg"
    assert call.params["duration"] == 2
    assert call.params["caption"] == "hi"
    assert sent.voice is not None and sent.voice.file_size == len(ogg)
    assert sent.reply_to_message is not None and sent.reply_to_message.text == "say hi"
    assert tg.file(sent.voice.file_id).data == ogg


async def test_fake_telegram_edit_message_text(tg: FakeTelegram) -> None:
    async with _bot(tg) as bot:
        first = await bot.send_message(USER, "Transcribing…")
        edited = await bot.edit_message_text(
            "hello world", chat_id=USER, message_id=first.message_id
        )
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_text("hello world", chat_id=USER, message_id=first.message_id)
        with pytest.raises(BadRequest, match="to edit not found"):
            await bot.edit_message_text("x", chat_id=USER, message_id=999)
        tg.fail("editMessageText", 400, "Bad Request: message to edit not found")
        with pytest.raises(BadRequest, match="to edit not found"):
            await bot.edit_message_text("again", chat_id=USER, message_id=first.message_id)

    assert not isinstance(edited, bool)
    assert edited.text == "hello world" and edited.edit_date is not None
    assert [c.method for c in tg.sent(USER)] == ["sendMessage", "editMessageText"]
    original = tg.sent(USER)[0].message
    assert original is not None and original["text"] == "Transcribing…"  # a snapshot, not live
    assert [m["text"] for m in tg.messages(USER)] == ["hello world"]


async def test_fake_telegram_429_raises_retry_after_without_rate_limiter(tg: FakeTelegram) -> None:
    tg.fail("sendMessage", 429, retry_after=3)
    async with _bot(tg) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "hi")
        await bot.send_message(USER, "hi")  # the fault was for one call only

    assert caught.value.retry_after == dtm.timedelta(seconds=3)
    assert [(c.method, c.status) for c in tg.calls if c.method == "sendMessage"] == [
        ("sendMessage", 429),
        ("sendMessage", 200),
    ]


async def test_fake_telegram_429_is_retried_by_aio_rate_limiter(tg: FakeTelegram) -> None:
    app = _builder(tg).rate_limiter(AIORateLimiter(max_retries=1)).build()
    tg.fail("sendMessage", 429, retry_after=1)
    async with app:
        message = await app.bot.send_message(USER, "hi")

    assert message.text == "hi"
    statuses = [c.status for c in tg.calls if c.method == "sendMessage"]
    assert statuses == [429, 200]


async def test_fake_telegram_blocked_user_and_unknown_token(tg: FakeTelegram) -> None:
    tg.block(USER)
    async with _bot(tg) as bot:
        with pytest.raises(Forbidden, match="blocked by the user"):
            await bot.send_message(USER, "hi")
    wrong = Bot("999:wrong", base_url=f"{tg.api_base}/bot")
    with pytest.raises(InvalidToken):
        await wrong.initialize()
    await wrong.shutdown()


async def test_fake_telegram_chat_members_and_commands(tg: FakeTelegram) -> None:
    tg.add_chat(GROUP, title="Voice lab")
    tg.set_member(GROUP, 7, "creator")
    tg.set_member(GROUP, 8, "administrator")
    async with _bot(tg) as bot:
        owner = await bot.get_chat_member(GROUP, 7)
        admin = await bot.get_chat_member(GROUP, 8)
        member = await bot.get_chat_member(GROUP, 9)
        admins = await bot.get_chat_administrators(GROUP)
        chat = await bot.get_chat(GROUP)
        await bot.set_my_commands([("speak", "Read text aloud")])
        commands = await bot.get_my_commands()
        with pytest.raises(BadRequest, match="private chat"):
            await bot.get_chat_administrators(USER)
        assert await bot.do_api_request("someFutureMethod", {"n": 1}) is True  # fallback

    assert isinstance(owner, ChatMemberOwner)
    assert isinstance(admin, ChatMemberAdministrator) and admin.can_delete_messages
    assert member.status == "member"
    assert sorted(m.user.id for m in admins) == [7, 8]
    assert chat.title == "Voice lab" and chat.type == "supergroup"
    assert [(c.command, c.description) for c in commands] == [("speak", "Read text aloud")]
    assert tg.commands() == [{"command": "speak", "description": "Read text aloud"}]
    assert tg.calls[-1].method == "someFutureMethod" and tg.calls[-1].params == {"n": 1}


async def test_fake_telegram_get_updates_offset_limit_and_long_poll(tg: FakeTelegram) -> None:
    url = f"{tg.api_base}/bot{tg.token}/getUpdates"
    for text in ("one", "two", "three"):
        tg.send_text(USER, USER, text)
    async with aiohttp.ClientSession() as http:

        async def get_updates(**params: int) -> list[dict[str, Any]]:
            async with http.post(url, data={k: str(v) for k, v in params.items()}) as resp:
                body = await resp.json()
            assert body["ok"] is True
            result: list[dict[str, Any]] = body["result"]
            return result

        assert [u["update_id"] for u in await get_updates(limit=2)] == [1, 2]
        assert [u["message"]["text"] for u in await get_updates(offset=3)] == ["three"]
        assert [u["update_id"] for u in tg.pending_updates()] == [3]
        started = time.monotonic()
        assert await get_updates(offset=4, timeout=0) == []
        assert time.monotonic() - started < 0.5
        held = asyncio.create_task(get_updates(offset=4, timeout=5))
        await tg.wait_held()
        tg.send_text(USER, USER, "four")
        assert [u["message"]["text"] for u in await asyncio.wait_for(held, 2)] == ["four"]
        assert [u["update_id"] for u in await get_updates(offset=-1)] == [4]


async def test_fake_telegram_stop_releases_concurrent_long_polls() -> None:
    fake = FakeTelegram()
    await fake.start()
    url = f"{fake.api_base}/bot{fake.token}/getUpdates"
    async with aiohttp.ClientSession() as http:

        async def poll() -> Any:
            async with http.post(url, data={"timeout": "30"}) as resp:
                return (await resp.json())["result"]

        polls = [asyncio.create_task(poll()) for _ in range(3)]
        await fake.wait_held(3)
        started = time.monotonic()
        await fake.stop()
        results = await asyncio.wait_for(asyncio.gather(*polls), 2)
    assert time.monotonic() - started < 2
    assert results == [[], [], []]


async def test_fake_telegram_polling_app_shuts_down_quickly(tg: FakeTelegram) -> None:
    app = _builder(tg).rate_limiter(AIORateLimiter()).build()
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=10)
    await tg.wait_held()
    started = time.monotonic()
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    await tg.stop()
    assert time.monotonic() - started < 3


async def test_fake_telegram_every_injected_update_parses_in_ptb(tg: FakeTelegram) -> None:
    mp3 = make_tone(0.2, "mp3")
    text = tg.send_text(GROUP, 7, "hello")
    tg.send_voice(GROUP, 7, b"OggS...", duration=4, reply_to=text["message_id"], file_size=10**8)
    tg.send_audio(GROUP, 7, mp3, duration=1, file_name="memo.mp3", title="Memo")
    tg.send_video_note(USER, USER, b"\x00\x00\x00\x18ftypmp42", duration=2, length=240)
    tg.send_document(USER, USER, b"RIFF", mime_type="audio/wav", file_name="a.wav", caption="c")
    tg.press_button(GROUP, 7, text["message_id"], "again")
    async with _bot(tg) as bot:
        updates = [Update.de_json(u, bot) for u in tg.pending_updates()]
        audio = await bot.send_audio(USER, mp3, filename="speech.mp3", title="Speech")
        document = await bot.send_document(USER, b"plain", filename="t.txt", caption="tx")

    voice_msg, audio_msg, note_msg, doc_msg = (u.message for u in updates[1:5])
    assert [u.update_id for u in updates] == [1, 2, 3, 4, 5, 6]
    assert voice_msg is not None and voice_msg.voice is not None
    assert voice_msg.voice.file_size == 10**8 and voice_msg.voice.mime_type == "audio/ogg"
    assert voice_msg.reply_to_message is not None and voice_msg.reply_to_message.text == "hello"
    assert voice_msg.chat.type == "supergroup" and voice_msg.from_user is not None
    assert audio_msg is not None and audio_msg.audio is not None
    assert audio_msg.audio.file_name == "memo.mp3" and audio_msg.audio.title == "Memo"
    assert note_msg is not None and note_msg.video_note is not None
    assert note_msg.video_note.length == 240 and note_msg.chat.type == "private"
    assert doc_msg is not None and doc_msg.document is not None and doc_msg.caption == "c"
    assert doc_msg.document.mime_type == "audio/wav" and doc_msg.document.file_name == "a.wav"
    query = updates[5].callback_query
    assert query is not None and query.data == "again" and query.from_user.id == 7
    assert audio.audio is not None and audio.audio.file_name == "speech.mp3"
    assert document.document is not None and document.document.file_name == "t.txt"
    assert tg.file(document.document.file_id).data == b"plain"


async def test_fake_telegram_drop_pending_updates_on_start(tg: FakeTelegram) -> None:
    tg.send_text(USER, USER, "/ping")  # sent while the bot was offline
    app = _builder(tg).build()
    app.add_handler(CommandHandler("ping", _ping))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1, drop_pending_updates=True)
    await tg.wait_held()
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    assert tg.sent(USER) == []
    assert tg.pending_updates() == []


async def test_fake_telegram_guest_query_is_answered_once_then_edited(tg: FakeTelegram) -> None:
    """Bot API 10.0: a guest_message carries its query id and the replied-to message; the one
    answer is an inline message the bot can edit afterwards."""
    voice = tg.post_unseen_voice(GROUP, USER, make_tone(0.5))
    tg.send_guest(GROUP, USER, reply_to=voice["message_id"])
    async with _bot(tg) as bot:
        [update] = await bot.get_updates(allowed_updates=["guest_message"])
        message = update.guest_message
        assert message is not None and message.guest_query_id
        assert message.reply_to_message is not None and message.reply_to_message.voice is not None
        result = InlineQueryResultArticle("1", "t", InputTextMessageContent("working"))
        sent = await bot.answer_guest_query(message.guest_query_id, result)
        assert tg.inline_messages[sent.inline_message_id] == {"text": "working"}
        with pytest.raises(BadRequest, match="query"):
            await bot.answer_guest_query(message.guest_query_id, result)
        assert await bot.edit_message_text("done", inline_message_id=sent.inline_message_id)
        assert tg.inline_messages[sent.inline_message_id] == {"text": "done"}
