"""The "working on it" message under a new job: sent right before the job is stored (by the
service, see :mod:`bot.service.placeholder`), edited as the job moves, replaced or removed by the
result; plus the reply helpers every Telegram send shares."""

from __future__ import annotations

import contextlib
import html
import logging
from dataclasses import replace
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError

from adapters.telegram.actions import ChatActions
from adapters.telegram.cancel import cancel_markup
from adapters.telegram.convert import code_job_id, voice_duration
from bot.chat.replies import progress_text
from bot.jobs.delivery import Reply
from bot.jobs.live import EditBudget, EditThrottle, partial_text, tail
from bot.model.job import Job, JobKind, JobState
from bot.model.speech import VoiceClip
from bot.text import Msg, text_for

_LOGGER = logging.getLogger(__name__)

# Progress edits per chat, from Telegram's FAQ ("avoid sending more than one message per second
# in a particular chat", "no more than 20 messages per minute to the same group"), edits counted
# as messages; a live-text edit of one message at most every 2.5 s (as Voicy does).
PRIVATE_BUDGET = EditBudget(per_chat=3, window=3.0, per_message=2.5)
GROUP_BUDGET = EditBudget(per_chat=15, window=60.0, per_message=2.5)
# The text so far stays under the 4,096-character limit with the status line above it.
LIVE_CHARS = 3500


def budget_for(chat_id: str) -> EditBudget:
    """The edit budget of a chat: private chats have positive ids, groups negative ones."""
    return PRIVATE_BUDGET if int(chat_id) > 0 else GROUP_BUDGET


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


async def send_voice(bot: Bot, reply: Reply, clip: VoiceClip) -> Message:
    """Send a speech job's clip as a voice message in reply to its origin: a reused clip by the
    file id Telegram already keeps (nothing uploaded), else (or if that id is refused) its
    bytes."""
    job = reply.job
    kwargs: dict[str, Any] = {"duration": voice_duration(clip.duration), **reply_kwargs(job)}
    kept = reply.clip_notes.get("telegram_voice_file")
    if kept:
        try:
            return await bot.send_voice(job.origin.chat_id, kept, **kwargs)
        except BadRequest as exc:  # the file is gone on Telegram's side: upload it again
            _LOGGER.info("job %s: stored voice refused (%s); uploading", job.id, exc)
    return await bot.send_voice(
        job.origin.chat_id, clip.ogg, filename=f"speech-{job.id}.ogg", **kwargs
    )


def _action(job: Job) -> str:
    return ChatAction.RECORD_VOICE if job.kind is JobKind.TTS else ChatAction.TYPING


class Placeholders:
    """One placeholder message per job, and the chat action ("typing…") that goes with it: a
    :class:`bot.service.placeholder.Placeholder`, which the service calls right before it stores
    the job, under the id shown, with the placeholder's id in its origin. Nothing is written back
    and nothing here needs to outlive a restart: a delivery or progress update finds the
    placeholder in the job itself, however soon it comes."""

    def __init__(
        self, bot: Bot, actions: ChatActions, throttle: EditThrottle | None = None
    ) -> None:
        self.bot = bot
        self.actions = actions
        self.throttle = throttle or EditThrottle()
        # Chats whose drafts the API refused (TEXTDRAFT_PEER_INVALID is seen in the wild): the
        # placeholder shows their text instead.
        self.no_drafts: set[str] = set()

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
        """Edit the placeholder to show the job's state and the text so far (best effort, within
        the chat's edit budget); in a private chat the text streams as a draft instead."""
        placeholder = job.placeholder_id
        if job.state.terminal:
            return
        self.actions.track(job, _action(job))  # also resumes the action after a restart
        if placeholder is None:
            return
        tr = text_for(job.origin.locale)
        text = code_job_id(progress_text(job, tr), job.id)
        partial = partial_text(job)
        if partial and not await self._draft(job, placeholder, partial):
            text += "\n\n" + html.escape(tail(partial, LIVE_CHARS))
        else:
            partial = None  # the edit shows the state only
        chat, budget = job.origin.chat_id, budget_for(job.origin.chat_id)
        if not self.throttle.allow(chat, placeholder, text, budget, live=partial is not None):
            return
        with contextlib.suppress(BadRequest):  # "not modified" or gone: nothing to show
            await self.bot.edit_message_text(
                text,
                chat_id=job.origin.chat_id,
                message_id=int(placeholder),
                parse_mode="HTML",
                reply_markup=cancel_markup(job.id, tr),
            )

    async def _draft(self, job: Job, placeholder: str, partial: str) -> bool:
        """Stream the text so far as a draft in a private chat (``sendMessageDraft``); False
        where drafts are not taken (a group, or the API refused one: edits from then on)."""
        chat = job.origin.chat_id
        if chat in self.no_drafts or int(chat) <= 0:
            return False
        text = tail(partial, LIVE_CHARS)
        if self.throttle.allow(chat, f"draft:{placeholder}", text, PRIVATE_BUDGET, live=True):
            thread = job.origin.thread_id
            try:
                # The placeholder's id names the draft: unique per job in this chat, non-zero.
                await self.bot.send_message_draft(
                    int(chat),
                    int(placeholder),
                    text,
                    message_thread_id=int(thread) if thread is not None else None,
                )
            except BadRequest as exc:
                _LOGGER.info("chat %s: draft refused (%s); edits from now on", chat, exc)
                self.no_drafts.add(chat)
                return False
            except TelegramError as exc:  # flood control, network: the next poll tries again
                _LOGGER.debug("chat %s: draft not sent: %s", chat, exc)
        return True

    def forget(self, job: Job) -> None:
        """The job's reply is going out: nothing kept about its placeholder any more."""
        placeholder = job.placeholder_id
        if placeholder is not None:
            self.throttle.forget(placeholder)
            self.throttle.forget(f"draft:{placeholder}")

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
