"""The "working on it" message under a new job: sent right before the job is stored (by the
service, see :mod:`bot.service.placeholder`), edited as the job moves, replaced or removed by the
result; plus the reply helpers every Telegram send shares."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError

from adapters.telegram.actions import ChatActions
from adapters.telegram.cancel import cancel_markup
from adapters.telegram.convert import code_job_id
from bot.chat.replies import progress_text
from bot.model.job import Job, JobKind, JobState
from bot.text import Msg, text_for

_LOGGER = logging.getLogger(__name__)


def reply_kwargs(job: Job) -> dict[str, Any]:
    """Where a reply to ``job`` goes: under its origin message, in its forum topic."""
    origin = job.origin
    kwargs: dict[str, Any] = {}
    if origin.reply_to is not None:
        # The original may have been deleted meanwhile; the reply still goes to the chat.
        kwargs["reply_parameters"] = ReplyParameters(
            int(origin.reply_to), allow_sending_without_reply=True
        )
    if origin.thread_id is not None:
        kwargs["message_thread_id"] = int(origin.thread_id)
    return kwargs


async def send_text(
    bot: Bot, job: Job, html_text: str, *, markup: InlineKeyboardMarkup | None = None
) -> str:
    """Send an HTML message to the job's chat as a reply to its origin; return its id."""
    message = await bot.send_message(
        job.origin.chat_id,
        html_text,
        parse_mode=ParseMode.HTML,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        reply_markup=markup,
        **reply_kwargs(job),
    )
    return str(message.message_id)


def _action(job: Job) -> str:
    return ChatAction.RECORD_VOICE if job.kind is JobKind.TTS else ChatAction.TYPING


class Placeholders:
    """One placeholder message per job, and the chat action ("typing…") that goes with it: a
    :class:`bot.service.placeholder.Placeholder`, which the service calls right before it stores
    the job, under the id shown, with the placeholder's id in its origin. Nothing is written back
    and nothing here needs to outlive a restart: a delivery or progress update finds the
    placeholder in the job itself, however soon it comes."""

    def __init__(self, bot: Bot, actions: ChatActions) -> None:
        self.bot = bot
        self.actions = actions

    async def show(self, job: Job) -> str | None:
        """Reply at once with a placeholder for a job about to be stored, and keep a chat
        action going; the message id, or None when it could not be sent."""
        tr = text_for(job.origin.locale)
        # A new job is picked up immediately, so say what is about to happen, not "queued".
        text = code_job_id(progress_text(replace(job, state=JobState.SUBMITTED), tr), job.id)
        try:
            sent = await send_text(self.bot, job, text, markup=cancel_markup(job.id, tr))
        except TelegramError as exc:
            _LOGGER.warning("job %s: placeholder not sent: %s", job.id, exc)
            sent = None
        # After the message: Telegram ends a chat action at the bot's next message.
        self.actions.track(job, _action(job))
        return sent

    async def withdraw(self, job: Job) -> None:
        """The job was not stored with this placeholder: stop its action, delete the message."""
        self.actions.done(job.id)
        placeholder = job.origin.placeholder_id
        if placeholder is None:
            return
        with contextlib.suppress(TelegramError):  # already gone: nothing to take back
            await self.bot.delete_message(job.origin.chat_id, int(placeholder))

    async def progress(self, job: Job) -> None:
        """Edit the placeholder to show the job's state (best effort)."""
        placeholder = job.placeholder_id
        if job.state.terminal:
            return
        self.actions.track(job, _action(job))  # also resumes the action after a restart
        if placeholder is None:
            return
        tr = text_for(job.origin.locale)
        with contextlib.suppress(BadRequest):  # "not modified" or gone: nothing to show
            await self.bot.edit_message_text(
                code_job_id(progress_text(job, tr), job.id),
                chat_id=job.origin.chat_id,
                message_id=int(placeholder),
                parse_mode="HTML",
                reply_markup=cancel_markup(job.id, tr),
            )

    async def show_cancelled(self, job: Job, message: Msg) -> None:
        """A job was cancelled: stop its chat action; the placeholder says so (no button)."""
        text = text_for(job.origin.locale).render(message)
        self.actions.done(job.id)
        placeholder = job.placeholder_id
        if placeholder is None:
            return
        with contextlib.suppress(TelegramError):  # gone or unchanged: the reply says it anyway
            await self.bot.edit_message_text(
                text, chat_id=job.origin.chat_id, message_id=int(placeholder)
            )
