"""Telegram guest mode (Bot API 10.0): answer a person who calls the bot by @username in a chat
it is not a member of, through ``answerGuestQuery``.

What Telegram sends and accepts (Bot API 10.0, python-telegram-bot 22.8): a ``guest_message``
update carries one Message with a ``guest_query_id``, in the chat where the bot was called; the
bot sees only that message and, when it was sent as a reply, the replied-to message as its
``reply_to_message`` (the MTProto layer's ``reference_messages``). ``answerGuestQuery`` takes
the query id and ONE InlineQueryResult, posts it into that chat as an inline message "via" the
bot, and returns its ``inline_message_id``: the answer can then be edited with
``editMessageText(inline_message_id=...)`` like any inline message. A query is answered once;
the documentation gives no deadline, so the placeholder answers it at once and the transcript
edits that message later, however long the job takes (a restart included). A voice message
cannot be uploaded in an answer (inline results take a URL or a ``file_id``), nor put in place
by editing an inline message (no voice ``InputMedia``): a ``/speak`` answer waits for the voice,
uploads it to the caller's private chat with the bot to get a ``file_id``, and answers with an
``InlineQueryResultCachedVoice``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultCachedVoice,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from adapters.telegram.convert import (
    MESSAGE_LIMIT,
    AudioAttachment,
    audio_attachment,
    code_job_id,
    escape,
    origin_for,
    voice_duration,
)
from bot.chat.replies import failure_text, progress_text, transcript_reply
from bot.model.errors import BotError, DeliveryError, InputError
from bot.model.job import Job, JobKind, JobState
from bot.text import Msg, msg, text_for

if TYPE_CHECKING:
    from telegram import Bot

    from bot.chat.settings import Prefs
    from bot.jobs.delivery import Reply
    from bot.model.speech import Origin
    from bot.service.placeholder import Placeholder
    from bot.service.voice import VoiceService

    # Downloads an attachment and transcribes it, its progress shown by the given placeholder.
    TranscribeFile = Callable[[Origin, AudioAttachment, Prefs, Placeholder], Awaitable[None]]

_LOGGER = logging.getLogger(__name__)

GUEST_QUERY = "guest_query_id"  # the origin's extra key: this job answers a guest query

GUEST_USAGE = msg(
    "I can only see the message that calls me here. Reply to a voice note with my @username to "
    "transcribe it, or write text after my @username to hear it read aloud; or forward the voice "
    "note to me in a private chat."
)
GUEST_CUT = msg("(Cut here: the full transcript is longer than one message. Forward the voice "
                "note to me in a private chat for all of it.)")  # fmt: skip
GUEST_ALREADY = msg("This voice note is already being transcribed for someone else here.")
GUEST_NO_DM = msg(
    "To post a voice message here, I need to upload it to our private chat first: open a chat "
    "with me, press Start, then call me again."
)
GUEST_ERROR = msg("Sorry, something went wrong on my side. Please try again in a moment.")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_MENTION = re.compile(r"@\w+")


def is_guest(job: Job) -> bool:
    """True for a job that answers a guest query (its replies go through the query)."""
    return bool(job.origin.extra.get(GUEST_QUERY))


def guest_origin(message: Message, target: Message | None, update_id: int) -> Origin:
    """The origin of a job a guest message starts: the chat it was called in, and its query."""
    origin = origin_for(message, reply_to=target, update_id=update_id)
    extra = {**origin.extra, GUEST_QUERY: message.guest_query_id or ""}
    return dataclasses.replace(origin, extra=extra)


def spoken_text(message: Message) -> str:
    """The text a guest call asks to hear: after the @mentions (and a /speak), else the
    replied-to message's text."""
    text = _MENTION.sub("", message.text or message.caption or "").strip()
    if text.startswith("/"):  # "/speak hi" speaks "hi"; another command is not text to read
        command, _, rest = text.partition(" ")
        text = rest if command.split("@")[0] == "/speak" else ""
    quoted = message.reply_to_message
    if not text and quoted is not None:
        text = quoted.text or quoted.caption or ""
    return text.strip()


def article(job_id: str, html_text: str) -> InlineQueryResultArticle:
    """A guest answer with text: an article whose message is ``html_text``."""
    content = InputTextMessageContent(
        html_text, parse_mode=ParseMode.HTML, link_preview_options=_NO_PREVIEW
    )
    return InlineQueryResultArticle(job_id[:64], "voicebot", content)


class GuestCalls:
    """Guest messages in, guest answers out: the handler, the placeholder the service shows
    (the query answered at once with the job's progress), and delivery (that answer edited
    into the transcript, or the voice message answered)."""

    def __init__(self, service: VoiceService, bot: Bot, transcribe: TranscribeFile) -> None:
        self.service = service
        self.bot = bot
        self.transcribe = transcribe
        # query id -> the answer show() posted, while its call is being handled: a refusal
        # that comes after it (the store refused the job) edits it, as a query is answered once.
        self._shown: dict[str, str] = {}

    def owns(self, job: Job) -> bool:
        """True for a job whose replies go through a guest query."""
        return is_guest(job)

    async def handle(self, update: Update, context: object) -> None:
        """A guest call: transcribe the voice note it is or replies to, or speak its text."""
        message = update.guest_message
        if message is None or not message.guest_query_id:
            return
        target = message if audio_attachment(message) else message.reply_to_message
        origin = guest_origin(message, target, update.update_id)
        if await self.service.already_created(origin):
            return  # a replayed update: its job exists and answers the query
        try:
            await self._start(message, target, origin)
        except BotError as exc:
            _LOGGER.info("telegram: guest call %s: %s", message.guest_query_id, exc)
            await self._refuse(message, origin, exc.text)
        except Exception:  # the caller still gets a sentence, not silence
            _LOGGER.exception("telegram: guest call %s failed", message.guest_query_id)
            await self._refuse(message, origin, GUEST_ERROR)
        finally:
            self._shown.pop(message.guest_query_id, None)

    async def _start(self, message: Message, target: Message | None, origin: Origin) -> None:
        prefs = await self.service.preferences.for_origin(origin)
        attachment = audio_attachment(target)
        if target is not None and attachment is not None:
            await self.transcribe(origin, attachment, prefs, self)
            return
        text = spoken_text(message)
        if not text:
            raise InputError(GUEST_USAGE)
        await self.service.speak(origin, text, prefs=prefs, placeholder=self)

    async def _refuse(self, message: Message, origin: Origin, text: Msg | str) -> None:
        """Answer the query with a sentence (a refusal, or how to use the bot here)."""
        tr = await self.service.preferences.text_for(origin)
        sentence = escape(tr.render(text) if isinstance(text, Msg) else text)
        query = message.guest_query_id or ""
        try:
            if query in self._shown:
                await self.bot.edit_message_text(sentence, inline_message_id=self._shown[query])
            else:
                await self.bot.answer_guest_query(query, article("refused", sentence))
        except TelegramError as exc:  # expired, or the answer deleted meanwhile
            _LOGGER.info("telegram: guest query not answered: %s", exc)

    # -- the placeholder (bot.service.placeholder.Placeholder) ------------------------------

    async def show(self, job: Job) -> str | None:
        """Answer the query at once with the job's progress; the inline message's id, which
        delivery edits. A /speak waits: its answer must be the voice message itself."""
        if job.kind is JobKind.TTS:
            return None
        tr = text_for(job.origin.locale)
        text = code_job_id(
            progress_text(dataclasses.replace(job, state=JobState.SUBMITTED), tr), job.id
        )
        try:
            sent = await self.bot.answer_guest_query(
                job.origin.extra[GUEST_QUERY], article(job.id, text)
            )
        except TelegramError as exc:
            _LOGGER.warning("job %s: guest query not answered: %s", job.id, exc)
            return None
        self._shown[job.origin.extra[GUEST_QUERY]] = sent.inline_message_id
        return sent.inline_message_id

    async def withdraw(self, job: Job) -> None:
        """The job was not stored (refused, or another holds the voice note): say so there."""
        inline = job.origin.placeholder_id
        if inline is None:
            return
        text = escape(text_for(job.origin.locale).render(GUEST_ALREADY))
        await self._edit(job, inline, text)

    async def progress(self, job: Job) -> None:
        """Edit the answer to show the job's state (best effort)."""
        inline = job.placeholder_id
        if inline is None or job.state.terminal:
            return
        await self._edit(
            job, inline, code_job_id(progress_text(job, text_for(job.origin.locale)), job.id)
        )

    async def _edit(self, job: Job, inline: str, html_text: str) -> None:
        try:
            await self.bot.edit_message_text(
                html_text, inline_message_id=inline, parse_mode=ParseMode.HTML,
                link_preview_options=_NO_PREVIEW,
            )  # fmt: skip
        except BadRequest as exc:  # "not modified", or deleted by someone in that chat
            _LOGGER.debug("job %s: guest answer not edited: %s", job.id, exc)

    # -- delivery ---------------------------------------------------------------------------

    async def _answer(
        self, job: Job, result: InlineQueryResultArticle | InlineQueryResultCachedVoice
    ) -> str:
        """Answer the job's query; a query Telegram no longer takes is answered for good (a
        query is answered once: most likely by an attempt that died before recording it)."""
        try:
            sent = await self.bot.answer_guest_query(job.origin.extra[GUEST_QUERY], result)
        except BadRequest as exc:
            if "query" in exc.message.lower():
                raise DeliveryError(f"guest query gone: {exc.message}", permanent=True) from exc
            raise
        return sent.inline_message_id

    async def deliver(self, reply: Reply) -> str | None:
        """The job's answer: its transcript (or failure) in the query's message, or the voice."""
        job = reply.job
        if job.kind is JobKind.TTS and job.state is not JobState.FAILED and reply.clip is not None:
            return await self._voice(reply)
        failed = escape(failure_text(job, text_for(job.origin.locale)))
        text = failed if job.kind is JobKind.TTS else self._one_message(job)
        inline = job.placeholder_id
        if inline is None:  # a reused transcript, or a placeholder that could not be sent
            return await self._answer(job, article(job.id, text))
        try:
            await self.bot.edit_message_text(
                text, inline_message_id=inline, parse_mode=ParseMode.HTML,
                link_preview_options=_NO_PREVIEW,
            )  # fmt: skip
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise  # the delivery error mapping decides: permanent or retried
        return inline

    def _one_message(self, job: Job) -> str:
        """One inline message holds the answer: the first part, and a note when cut."""
        tr = text_for(job.origin.locale)
        reply = transcript_reply(
            job, limit=MESSAGE_LIMIT - 200, max_messages=1, escape=escape, utf16=True, tr=tr
        )
        if reply.messages and len(reply.messages) == 1 and not reply.files:
            return reply.messages[0]
        first = reply.messages[0] if reply.messages else ""
        return f"{first}\n\n{escape(tr.render(GUEST_CUT))}".strip()

    async def _voice(self, reply: Reply) -> str | None:
        job, clip = reply.job, reply.clip
        assert clip is not None
        # A reused clip: the voice Telegram already keeps (sent in a chat or another answer).
        notes = reply.clip_notes
        file_id: str | None = (
            job.extra.get("telegram_guest_voice")
            or notes.get("telegram_guest_voice")
            or notes.get("telegram_voice_file")
        )
        if file_id is None:
            try:
                sent = await self.bot.send_voice(
                    int(job.origin.user_id), clip.ogg, duration=voice_duration(clip.duration),
                    filename=f"speech-{job.id}.ogg",
                )  # fmt: skip
            except Forbidden:  # never started the bot: no private chat to upload into
                text = escape(text_for(job.origin.locale).render(GUEST_NO_DM))
                return await self._answer(job, article(job.id, text))
            assert sent.voice is not None
            file_id = sent.voice.file_id
            # Recorded before answering: a retry answers with this upload, never a second one.
            await reply.checkpoint(telegram_guest_voice=file_id)
        result = InlineQueryResultCachedVoice(job.id[:64], file_id, "voicebot")
        return await self._answer(job, result)
