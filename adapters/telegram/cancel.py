"""/cancel and the ✖ button under a job's placeholder (an inline keyboard callback query)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from telegram import Chat, ChatMember, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError

from adapters.telegram.convert import GROUP_ANONYMOUS_BOT, PLATFORM, escape, is_private, origin_for
from bot.chat.replies import CANCEL_BUTTON, CANCEL_DONE_TOAST
from bot.model.errors import BotError
from bot.model.speech import Origin
from bot.text import ENGLISH, Msg, Text

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import ContextTypes

    from bot.model.job import Job
    from bot.service.voice import VoiceService

    Context = ContextTypes.DEFAULT_TYPE

_LOGGER = logging.getLogger(__name__)
CANCEL_PREFIX = "cancel:"


def cancel_markup(job_id: str, tr: Text = ENGLISH) -> InlineKeyboardMarkup:
    """The ✖ button under a placeholder; its callback data names the job (well under 64 bytes)."""
    label = tr.render(CANCEL_BUTTON)
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=CANCEL_PREFIX + job_id)]]
    )


async def is_chat_admin(bot: Bot, chat: Chat, user_id: int) -> bool:
    """Whether ``user_id`` runs ``chat``: its owner or an admin (anyone, in a private chat);
    False when Telegram cannot say."""
    if is_private(chat):
        return True
    if user_id == GROUP_ANONYMOUS_BOT:
        return False
    try:
        member = await bot.get_chat_member(chat.id, user_id)
    except TelegramError as exc:
        _LOGGER.info("telegram: cannot check admin status in %s: %s", chat.id, exc)
        return False
    return member.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR)


class TelegramCancel:
    """Cancels the caller's job (any job of the chat for its admins) by command or button."""

    def __init__(
        self, service: VoiceService, show_cancelled: Callable[[Job, Msg], Awaitable[None]]
    ) -> None:
        self.service = service
        self.show_cancelled = show_cancelled  # the placeholder says so, its chat action stops

    async def _is_admin(self, chat: Chat, user_id: int, context: Context) -> bool:
        return await is_chat_admin(context.bot, chat, user_id)

    async def command(self, update: Update, context: Context) -> None:
        """/cancel [job]: the caller's newest queued or running job, or the one named (the ✖
        button comes through :mod:`adapters.telegram.buttons`, the one callback-query
        dispatcher)."""
        message = update.message
        if message is None:
            return
        origin = origin_for(message)
        if not self.service.allowed(origin):
            return
        sender = message.sender_chat
        admin = sender is not None and sender.id == message.chat_id  # anonymous group admin
        if not admin and message.from_user is not None:
            admin = await self._is_admin(message.chat, message.from_user.id, context)
        job_id = context.args[0] if context.args else None
        tr = await self.service.preferences.text_for(origin)
        try:
            done = await self.service.cancel(origin, job_id, admin=admin)
        except BotError as exc:
            text = tr.render(exc.text)
        else:
            await self.show_cancelled(done.job, done.text)
            text = tr.render(done.text)
        await message.reply_html(
            escape(text), do_quote=message.build_reply_arguments(allow_sending_without_reply=True)
        )

    async def button(self, update: Update, context: Context) -> None:
        """The ✖ button: answered with a toast; the placeholder itself says what happened."""
        query = update.callback_query
        if query is None or query.message is None or not query.data:
            return
        chat = query.message.chat
        user = query.from_user
        extra = {"locale": user.language_code} if user.language_code else {}
        origin = Origin(PLATFORM, chat_id=str(chat.id), user_id=str(user.id), extra=extra)
        tr = await self.service.preferences.text_for(origin)
        if not self.service.allowed(origin):
            await query.answer()
            return
        admin = await self._is_admin(chat, query.from_user.id, context)
        try:
            done = await self.service.cancel(
                origin, query.data.removeprefix(CANCEL_PREFIX), admin=admin
            )
        except BotError as exc:
            await query.answer(tr.render(exc.text), show_alert=True)
            return
        await query.answer(tr.render(CANCEL_DONE_TOAST))
        await self.show_cancelled(done.job, done.text)
