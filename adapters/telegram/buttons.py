"""Inline keyboard buttons: one callback-query dispatcher for ✖ Cancel, Summarize and Translate."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import Application, CallbackQueryHandler

from adapters.telegram.cancel import CANCEL_PREFIX, TelegramCancel
from adapters.telegram.convert import PLATFORM, command_args, escape, origin_for
from bot.chat.replies import (
    ENGLISH_BUTTON,
    SUMMARIZE_BUTTON,
    TRANSLATE_BUTTON,
    text_job_toast,
    text_usage,
)
from bot.model.errors import BotError, InputError
from bot.model.speech import Origin
from bot.text import ENGLISH, Msg, Text

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any

    from telegram.ext import ContextTypes

    from adapters.telegram.placeholders import Placeholders
    from bot.service.voice import VoiceService

    Context = ContextTypes.DEFAULT_TYPE

_LOGGER = logging.getLogger(__name__)
# callback_data (at most 64 bytes) → the service's action; the job id follows the prefix.
TEXT_ACTIONS = {"sum:": "summary", "tr:": "translate", "en:": "translate"}
# The service's button names (VoiceService.text_buttons) → callback prefix and label.
_BUTTONS: dict[str, tuple[str, Msg]] = {
    "summary": ("sum:", SUMMARIZE_BUTTON),
    "translate": ("tr:", TRANSLATE_BUTTON),
    "english": ("en:", ENGLISH_BUTTON),
}


def text_markup(
    job_id: str, tr: Text = ENGLISH, names: tuple[str, ...] = ("summary", "translate")
) -> InlineKeyboardMarkup:
    """Summarize / Translate (or Translate → English) under a finished transcript."""
    row = [
        InlineKeyboardButton(tr.render(_BUTTONS[n][1]), callback_data=_BUTTONS[n][0] + job_id)
        for n in names
    ]
    return InlineKeyboardMarkup([row])


class TelegramButtons:
    """The one callback-query handler: routes each button press by its data's prefix."""

    def __init__(
        self, service: VoiceService, placeholders: Placeholders, cancel: TelegramCancel
    ) -> None:
        self.service = service
        self.placeholders = placeholders
        self.cancel = cancel
        # More buttons by their data's prefix (the links' "Transcribe this link").
        self.routes: dict[str, Callable[[Update, Context], Awaitable[None]]] = {}

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add the dispatcher (every callback query of this bot is one of its buttons)."""
        app.add_handler(CallbackQueryHandler(self.pressed))

    async def pressed(self, update: Update, context: Context) -> None:
        """Route a press; an unknown button (an old keyboard) is just acknowledged."""
        query = update.callback_query
        if query is None:
            return
        data = query.data or ""
        if data.startswith(CANCEL_PREFIX):
            await self.cancel.button(update, context)
            return
        for prefix, route in self.routes.items():
            if data.startswith(prefix):
                await route(update, context)
                return
        for prefix, action in TEXT_ACTIONS.items():
            if data.startswith(prefix):
                english = "en" if prefix == "en:" else None
                await self.text_action(update, action, data.removeprefix(prefix), english)
                return
        await query.answer()

    async def text_action(
        self, update: Update, action: str, job_id: str, language: str | None = None
    ) -> None:
        """Summarize or translate the transcript under which the button sits, as a job replying
        to that message (``language``: the button's own, else the presser's); pressed again (by
        anyone) it names the job already made."""
        query = update.callback_query
        if query is None:
            return
        if not isinstance(query.message, Message):  # too old to be accessible
            await query.answer()
            return
        message = query.message
        code = query.from_user.language_code
        locale = {"locale": code} if code else {}
        origin = Origin(
            platform=PLATFORM,
            chat_id=str(message.chat.id),
            user_id=str(query.from_user.id),
            reply_to=str(message.message_id),
            thread_id=str(message.message_thread_id) if message.message_thread_id else None,
            extra={"source": f"cb:{query.id}", **locale},
        )
        if not self.service.allowed(origin):
            await query.answer()
            return
        tr = await self.service.preferences.text_for(origin)
        language = language or query.from_user.language_code
        try:
            job = await self.service.text_job(
                origin, job_id, action, language, placeholder=self.placeholders
            )
        except BotError as exc:
            await query.answer(tr.render(exc.text), show_alert=True)
            return
        fresh = job.origin.extra.get("source") == origin.extra["source"]
        await query.answer(text_job_toast(job, fresh=fresh, tr=tr))

    async def summarize(self, update: Update, context: Context) -> None:
        """/summarize [ID] [language], or as a reply to a transcript."""
        await self._command(update, "summary", "summarize")

    async def translate(self, update: Update, context: Context) -> None:
        """/translate [ID] [language] (default: the sender's), or as a reply to a transcript."""
        await self._command(update, "translate", "translate")

    async def _command(self, update: Update, action: str, command: str) -> None:
        message = update.message
        assert message is not None
        words = command_args(message).split()
        chat = str(message.chat_id)
        quoted = message.reply_to_message
        found = None
        if quoted is not None:
            found = await self.service.transcript_for_message(
                PLATFORM, chat, str(quoted.message_id)
            )
        job_id = found.id if found is not None else (words.pop(0) if words else None)
        if job_id is None:
            raise InputError(text_usage(command))
        user = message.from_user
        language = " ".join(words) or (user.language_code if user is not None else None)
        origin = origin_for(message, update_id=update.update_id)
        if await self.service.already_created(origin):
            return  # a replayed update: its job exists and will be delivered
        job = await self.service.text_job(
            origin, job_id, action, language, placeholder=self.placeholders
        )
        if job.origin.extra.get("source") != origin.extra.get("source"):
            tr = await self.service.preferences.text_for(origin)
            await message.reply_html(escape(text_job_toast(job, fresh=False, tr=tr)))
