"""Pure conversions between python-telegram-bot objects and the core's plain dataclasses."""

from __future__ import annotations

import datetime as dtm
import html
import math
from dataclasses import dataclass
from pathlib import PurePosixPath

from telegram import Chat, Message, MessageEntity
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.model.errors import DeliveryError
from bot.model.speech import Origin
from bot.text import ENGLISH, Text

PLATFORM = "telegram"
MESSAGE_LIMIT = 4096  # Bot API limit, in UTF-16 code units after entity parsing
GROUP_ANONYMOUS_BOT = 1087968824  # "from" of messages an anonymous group admin sends

_AUDIO_EXTENSIONS = frozenset(
    {".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wav", ".flac", ".webm", ".mp4", ".amr"}
)


@dataclass(frozen=True, slots=True)
class AudioAttachment:
    """The audio part of a message: what to download and how to name it for the provider."""

    file_id: str
    file_unique_id: str
    file_size: int | None
    filename: str
    kind: str  # voice, audio, video_note, document


def audio_attachment(message: Message | None) -> AudioAttachment | None:
    """The voice note, audio file, video note or audio document of ``message`` (None if none)."""
    if message is None:
        return None
    if message.voice is not None:
        v = message.voice
        return AudioAttachment(v.file_id, v.file_unique_id, v.file_size, "voice.ogg", "voice")
    if message.audio is not None:
        a = message.audio
        name = a.file_name or "audio" + _extension_for(a.mime_type, ".mp3")
        return AudioAttachment(a.file_id, a.file_unique_id, a.file_size, name, "audio")
    if message.video_note is not None:
        n = message.video_note
        return AudioAttachment(n.file_id, n.file_unique_id, n.file_size, "note.mp4", "video_note")
    if message.document is not None:
        d = message.document
        mime = (d.mime_type or "").lower()
        suffix = PurePosixPath(d.file_name or "").suffix.lower()
        if mime.startswith("audio/") or (
            not mime.startswith("image/") and suffix in _AUDIO_EXTENSIONS
        ):
            name = d.file_name or "audio" + _extension_for(mime, ".bin")
            return AudioAttachment(d.file_id, d.file_unique_id, d.file_size, name, "document")
    return None


def _extension_for(mime: str | None, default: str) -> str:
    known = {
        "audio/ogg": ".ogg",
        "audio/mpeg": ".mp3",
        "audio/mp4": ".m4a",
        "audio/x-m4a": ".m4a",
        "audio/wav": ".wav",
        "audio/x-wav": ".wav",
        "audio/flac": ".flac",
        "audio/webm": ".webm",
    }
    return known.get((mime or "").lower(), default)


def is_private(chat: Chat) -> bool:
    """True for a one-to-one chat with the bot."""
    return chat.type == Chat.PRIVATE


def origin_for(
    message: Message, *, reply_to: Message | None = None, update_id: int | None = None
) -> Origin:
    """Where a job started by ``message`` replies (``reply_to`` defaults to the message itself).

    ``update_id`` marks the job with the Telegram update that created it, so an update replayed
    after a crash (it was stored but not yet confirmed to Telegram) does not create a second job.
    """
    target = reply_to or message
    user = message.from_user
    sender = user.id if user is not None else (message.sender_chat.id if message.sender_chat else 0)
    thread = message.message_thread_id if message.is_topic_message else None
    extra: dict[str, str] = {"source": f"update:{update_id}"} if update_id is not None else {}
    if user is not None and user.language_code:
        extra["locale"] = user.language_code  # the client's language (IETF tag)
    return Origin(
        platform=PLATFORM,
        chat_id=str(message.chat_id),
        user_id=str(sender),
        reply_to=str(target.message_id),
        thread_id=str(thread) if thread is not None else None,
        extra=extra,
    )


def command_args(message: Message) -> str:
    """The text after ``/command`` (or ``/command@bot``), newlines kept, stripped."""
    text = message.text or message.caption or ""
    for entity in message.entities or ():
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            command = message.parse_entity(entity)
            return text[len(command) :].strip()
    return text.split(maxsplit=1)[1].strip() if len(text.split(maxsplit=1)) > 1 else ""


def seconds(value: int | float | dtm.timedelta | None) -> float | None:
    """A Bot API duration as seconds: PTB gives ``int`` or (PTB_TIMEDELTA / v23) ``timedelta``."""
    if value is None:
        return None
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def voice_duration(duration: float) -> int:
    """``sendVoice``'s ``duration``: whole seconds, rounded up so a 0.4 s clip shows as 0:01."""
    return max(1, math.ceil(duration - 1e-6))


def escape(text: str) -> str:
    """Escape text for ``parse_mode=HTML`` (Telegram needs only ``<``, ``>`` and ``&``)."""
    return html.escape(text, quote=False)


def code_job_id(text: str, job_id: str) -> str:
    """Escape ``text`` and show ``job_id`` in it as monospace (tap to copy in Telegram)."""
    escaped = escape(text)
    return escaped.replace(job_id, f"<code>{job_id}</code>", 1)


def megabytes(size: int, tr: Text = ENGLISH) -> str:
    """``20 MB``, ``25.3 MB`` (``25,3 MB``): sizes as people read them."""
    return tr.size(size)


# BadRequest texts that mean the chat is gone for this bot: retrying can never succeed.
_CHAT_GONE = (
    "chat not found",
    "bot was kicked",
    "bot is not a member",
    "have no rights to send",
    "not enough rights",
    "chat_write_forbidden",
    "user is deactivated",
    "group chat was deactivated",
)


def delivery_error(exc: TelegramError) -> DeliveryError:
    """Map a failed send to a DeliveryError: a flood wait, a refusal for good, or transient."""
    if isinstance(exc, RetryAfter):
        return DeliveryError(str(exc), retry_after=seconds(exc.retry_after))
    if isinstance(exc, Forbidden | ChatMigrated):
        return DeliveryError(f"telegram refused: {exc}", permanent=True)
    if isinstance(exc, BadRequest):
        gone = any(marker in exc.message.lower() for marker in _CHAT_GONE)
        return DeliveryError(f"telegram refused: {exc}", permanent=gone)
    return DeliveryError(f"telegram error: {exc}")
