"""Telegram files in: an attachment downloaded within the Bot API's limit, then transcribed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from telegram.error import BadRequest

from adapters.telegram.convert import AudioAttachment
from bot.chat.replies import FILE_UNAVAILABLE
from bot.model.errors import InputError
from bot.text import Msg, Size, msg

if TYPE_CHECKING:
    from telegram import Bot

    from bot.chat.settings import Prefs
    from bot.model.speech import Origin
    from bot.service.placeholder import Placeholder
    from bot.service.voice import VoiceService

_LOGGER = logging.getLogger(__name__)


def too_big_text(size: int | None, limit: int) -> Msg:
    """The answer for a file the Bot API will not hand over."""
    if size:
        return msg(
            "This file is {size}; bots can only download files up to {limit} from Telegram. "
            "(The bot's operator can lift this limit with a local Bot API server, "
            "telegram.api_base.)",
            size=Size(size),
            limit=Size(limit),
        )
    return msg(
        "This file is too big; bots can only download files up to {limit} from Telegram. "
        "(The bot's operator can lift this limit with a local Bot API server, "
        "telegram.api_base.)",
        limit=Size(limit),
    )


class TelegramFiles:
    """Downloads the audio a message carries and hands it to the service, for the chat
    handlers and the guest calls alike."""

    def __init__(self, service: VoiceService, bot: Bot, limit: int) -> None:
        self.service = service
        self.bot = bot
        self.limit = limit

    async def transcribe(
        self, origin: Origin, attachment: AudioAttachment, prefs: Prefs, shown: Placeholder
    ) -> None:
        """Download an attachment and transcribe it (its ``file_unique_id`` tells a file sent
        again, whose transcript is reused); ``shown``: where the job's progress goes."""
        data = await self.download(attachment)
        await self.service.transcribe(
            origin,
            data,
            attachment.filename,
            prefs=prefs,
            dedup_key=attachment.file_unique_id,
            placeholder=shown,
        )

    async def download(self, attachment: AudioAttachment) -> bytes:
        """The attachment's bytes, refused before getFile when Telegram says it is too big."""
        limit = self.limit
        # Checked before getFile: the public Bot API refuses big files, and we never fetch them.
        if attachment.file_size is not None and attachment.file_size > limit:
            raise InputError(too_big_text(attachment.file_size, limit))
        bot = self.bot
        try:
            file = await bot.get_file(attachment.file_id)
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise InputError(too_big_text(attachment.file_size, limit)) from exc
            # Expired file_id, file gone, wrong bot...: the user can act on this, not on "oops".
            raise InputError(
                f"getFile refused: {exc.message}", user_message=FILE_UNAVAILABLE
            ) from exc
        if file.file_size is not None and file.file_size > limit:
            raise InputError(too_big_text(file.file_size, limit))
        # The file URL embeds the bot token: only PTB ever sees it; providers get the bytes.
        return bytes(await file.download_as_bytearray())
