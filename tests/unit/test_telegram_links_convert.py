"""Which link a Telegram message or a /transcribe command means (real PTB objects from payloads)."""

from __future__ import annotations

from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Message, Update

from adapters.telegram.links import command_link, command_target, message_links, offer_markup
from bot.text import ENGLISH

BOT = Bot("123456:TEST-token")
USER = {"id": 42, "is_bot": False, "first_name": "Ann"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Ann"}


def message(text: str, **extra: Any) -> Message:
    payload = {"message_id": 7, "date": 0, "chat": PRIVATE, "from": USER, "text": text, **extra}
    update = Update.de_json({"update_id": 1, "message": payload}, BOT)
    assert update is not None and update.message is not None
    return update.message


def command(text: str, reply_to: dict[str, Any] | None = None) -> Message:
    entity = {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
    extra: dict[str, Any] = {"entities": [entity]}
    if reply_to is not None:
        extra["reply_to_message"] = {"message_id": 5, "date": 0, "chat": PRIVATE, **reply_to}
    return message(text, **extra)


def test_links_of_a_message_text_caption_and_formatted_links_in_order_once() -> None:
    hidden = {"type": "text_link", "offset": 0, "length": 4, "url": "https://b.test/2.mp3"}
    text = message("here https://a.test/1.mp3, and https://a.test/1.mp3.", entities=[hidden])
    assert message_links(text) == ["https://a.test/1.mp3", "https://b.test/2.mp3"]
    payload = {"message_id": 8, "date": 0, "chat": PRIVATE, "from": USER}
    photo = Message.de_json({**payload, "caption": "see https://c.test/x.ogg"}, BOT)
    assert message_links(photo) == ["https://c.test/x.ogg"]
    assert message_links(None) == [] and message_links(message("no link here")) == []


def test_links_command_words_a_typed_link_or_another_scheme_to_refuse() -> None:
    assert command_link("https://a.test/1.mp3 please") == "https://a.test/1.mp3"
    assert command_link("file:///etc/passwd") == "file:///etc/passwd"  # refused with its reason
    assert command_link("ftp://a.test/x") == "ftp://a.test/x"
    assert command_link("please") is None and command_link("") is None


def test_links_command_target_prefers_typed_link_then_audio_then_the_quoted_link() -> None:
    quoted = {"text": "the talk https://a.test/talk.mp3", "from": USER}
    typed = command("/transcribe https://b.test/x.mp3", reply_to=quoted)
    found = command_target(typed, audio=True)
    assert found is not None and found[0] == "https://b.test/x.mp3" and found[1] is typed
    assert command_target(command("/transcribe", reply_to=quoted), audio=True) is None
    bare = command("/transcribe", reply_to=quoted)
    found = command_target(bare, audio=False)
    assert found is not None and found[0] == "https://a.test/talk.mp3"
    assert found[1].message_id == 5  # the job replies to the message with the link
    assert command_target(command("/transcribe"), audio=False) is None


def test_links_offer_buttons_carry_only_an_index_well_under_64_bytes() -> None:
    links = [f"https://site{i}.test/{'x' * 200}.mp3" for i in range(3)]
    markup = offer_markup(links, ENGLISH)
    assert isinstance(markup, InlineKeyboardMarkup)
    data = [b.callback_data for row in markup.inline_keyboard for b in row]
    assert data == ["link:0", "link:1", "link:2"]
    labels = [b.text for row in markup.inline_keyboard for b in row]
    assert all(len(label) < 60 for label in labels) and labels[0].startswith("🎙 1. site0.test/")
    [[one]] = offer_markup(links[:1], ENGLISH).inline_keyboard
    assert (one.text, one.callback_data) == ("🎙 Transcribe this link", "link:0")
