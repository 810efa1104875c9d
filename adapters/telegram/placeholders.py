"""The "working on it" message under a new job: sent at once, edited as the job moves, replaced
or removed by the result; plus the reply helpers every Telegram send shares."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError

from adapters.telegram.actions import ChatActions
from adapters.telegram.cancel import cancel_markup
from adapters.telegram.convert import code_job_id
from bot.chat.replies import progress_text
from bot.model.job import Job, JobKind, JobState
from bot.text import Msg, text_for

if TYPE_CHECKING:
    from bot.service.voice import VoiceService

_LOGGER = logging.getLogger(__name__)

_SETUP_WAIT = 15.0  # seconds a delivery waits for a placeholder that is being sent right now


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
    """One placeholder message per job, and the chat action ("typing…") that goes with it.

    The message id is stored in the job row (``progress_message_id``); the dict here only bridges
    the moment between sending it and storing it.
    """

    def __init__(self, bot: Bot, service: VoiceService, actions: ChatActions) -> None:
        self.bot = bot
        self.service = service
        self.actions = actions
        self._sent: dict[str, str] = {}
        self._setting_up: dict[str, asyncio.Event] = {}

    async def announce(self, job: Job) -> None:
        """Reply at once with a placeholder for a new job and keep a chat action going.

        Called right after the job was created, before anything awaits, so :meth:`wait` (a
        delivery or a progress update) waits for the placeholder instead of racing it.
        """
        ready = asyncio.Event()
        self._setting_up[job.id] = ready
        try:
            if job.state.terminal:
                return  # a reused transcript: the result itself follows at once
            self.actions.track(job, _action(job))
            # A new job is picked up immediately, so say what is about to happen, not "queued".
            tr = text_for(job.origin.locale)
            text = code_job_id(progress_text(replace(job, state=JobState.SUBMITTED), tr), job.id)
            try:
                sent = await send_text(self.bot, job, text, markup=cancel_markup(job.id, tr))
            except TelegramError as exc:
                _LOGGER.warning("job %s: placeholder not sent: %s", job.id, exc)
                return
            self._sent[job.id] = sent
            await self.service.set_progress_message(job.id, sent)
        finally:
            ready.set()
            self._setting_up.pop(job.id, None)

    async def wait(self, job: Job) -> str | None:
        """The job's placeholder id, once it is sent (None: it has none)."""
        ready = self._setting_up.get(job.id)
        if ready is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), _SETUP_WAIT)
        return job.progress_message_id or self._sent.get(job.id)

    def forget(self, job_id: str) -> None:
        """The job was answered: its placeholder is no longer ours to track."""
        self._sent.pop(job_id, None)

    async def progress(self, job: Job) -> None:
        """Edit the placeholder to show the job's state (best effort)."""
        placeholder = await self.wait(job)
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
        placeholder = job.progress_message_id or self._sent.pop(job.id, None)
        if placeholder is None:
            return
        with contextlib.suppress(TelegramError):  # gone or unchanged: the reply says it anyway
            await self.bot.edit_message_text(
                text, chat_id=job.origin.chat_id, message_id=int(placeholder)
            )
