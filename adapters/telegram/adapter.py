"""TelegramAdapter: PTB's manual lifecycle in the shared loop (long polling under a leader lock),
the command menu, and job delivery; placeholders live in :mod:`adapters.telegram.placeholders`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from typing import TYPE_CHECKING, Any

import aiohttp
from telegram import BotCommand, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.warnings import PTBUserWarning

from adapters.telegram.actions import ChatActions
from adapters.telegram.buttons import text_markup
from adapters.telegram.config import telegram_config
from adapters.telegram.convert import (
    MESSAGE_LIMIT,
    PLATFORM,
    code_job_id,
    delivery_error,
    escape,
    seconds,
)
from adapters.telegram.handlers import TelegramHandlers
from adapters.telegram.placeholders import Placeholders, reply_kwargs, send_text, send_voice
from bot.chat.replies import failure_text, transcript_reply
from bot.jobs.delivery import Reply
from bot.model.errors import ConfigError
from bot.model.job import Job, JobKind, JobState
from bot.text import shipped_locales, text_for

if TYPE_CHECKING:
    from bot.app.core import Core

_LOGGER = logging.getLogger(__name__)

PtbApp = Application[Any, Any, Any, Any, Any, Any]

_ALLOWED_UPDATES = ["message", "callback_query", "guest_message"]


class TelegramAdapter:
    """The Telegram side of the bot: takes updates by long polling and delivers job results.

    Only the core's job store knows about jobs; this object keeps nothing that must survive a
    restart (placeholder ids live in the job rows, chat actions are cosmetic).
    """

    platform = PLATFORM

    def __init__(self, core: Core, *, poll_timeout: int = 30) -> None:
        self.core = core
        self.config = telegram_config(core.config)
        self.service = core.service
        self._poll_timeout = poll_timeout
        self.app: PtbApp = self._build()
        self.actions = ChatActions(self.app.bot, max_age=core.config.jobs.deadline_seconds)
        self.placeholders = Placeholders(self.app.bot, self.actions)
        self._polling: asyncio.Task[None] | None = None
        self._leading = False
        # Set by quiesce: the poll loop ends after the batch it is handling (see _poll).
        self._quiescing = asyncio.Event()
        self._in_batch = False
        self._offset: int | None = None  # the next getUpdates' offset: confirms what was handled
        self.handlers = TelegramHandlers(
            self.service, self.app.bot, self.placeholders, self.config, core.links.check
        )
        self.handlers.register(self.app)

    def _build(self) -> PtbApp:
        cfg = self.config
        if not cfg.token:
            raise ConfigError(["telegram.token: missing (set TELEGRAM_BOT_TOKEN)"])
        # max_retries=0: a flood wait on a delivery goes back to the poller as retry_after, so
        # it is waited out durably instead of holding a worker slot asleep.
        return (
            ApplicationBuilder()
            .token(cfg.token)
            .base_url(f"{cfg.api_base}/bot")
            .base_file_url(f"{cfg.api_base}/file/bot")
            .local_mode(cfg.local_mode)
            .rate_limiter(AIORateLimiter(max_retries=0))
            .concurrent_updates(16)
            .get_updates_read_timeout(self._poll_timeout + 10)
            # Our own polling loop (see _poll): PTB's Updater confirms updates before the
            # handlers have stored their jobs, and a crash in between would lose a voice note.
            .updater(None)
            .build()
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in (getMe), register the command menu, and start long polling.

        Raises:
            ConfigError: Telegram rejected the token.
        """
        try:
            await self.app.initialize()
        except InvalidToken as exc:
            raise ConfigError(["telegram.token: rejected by Telegram (check the token)"]) from exc
        await self._register_commands()
        await self.app.start()
        # Updates sent while the bot was down are still answered: no drop_pending_updates.
        await self.app.bot.delete_webhook()
        self._polling = asyncio.create_task(self._receive(), name="telegram-poll")
        _LOGGER.info("telegram: started as @%s", self.app.bot.username)

    async def _receive(self) -> None:
        """Poll while this process holds the token's leader lock: Telegram allows one
        ``getUpdates`` consumer per token, so with several processes on one database one
        receives and the others stand by (and still deliver). A standby that takes over starts
        from the last confirmed offset: updates the old leader had not confirmed are replayed,
        and ``service.already_created`` skips those whose job it stored."""
        leader = self.core.store.leader(f"telegram:{self.app.bot.id}")
        try:
            while True:
                self._leading = False
                await leader.acquire()
                self._leading = True
                _LOGGER.info("telegram: polling as @%s", self.app.bot.username)
                poll = asyncio.create_task(self._poll(), name="telegram-getupdates")
                lost = asyncio.create_task(leader.wait_lost(), name="telegram-leader")
                await asyncio.wait({poll, lost}, return_when=asyncio.FIRST_COMPLETED)
                for task in (poll, lost):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if poll.done() and not poll.cancelled():
                    return  # polling ended by itself (token revoked)
        finally:
            self._leading = False
            await leader.release()

    @property
    def standby(self) -> bool:
        """True while another process holds the token's ``getUpdates`` lock: this one only
        delivers, and takes over polling when that process dies."""
        return self._polling is not None and not self._polling.done() and not self._leading

    async def wait_disconnected(self) -> None:
        """Return when polling stopped (token revoked), raise what crashed it otherwise."""
        if self._polling is not None:
            await asyncio.shield(self._polling)

    async def _poll(self) -> None:
        """Long-poll getUpdates; confirm a batch (next offset) only after its handlers ran.

        Handlers store their job before returning, so an update is either confirmed with its
        job stored, or replayed after a crash, where ``service.already_created`` skips it.
        """
        failures = 0
        while not self._quiescing.is_set():
            offset = self._offset
            try:
                updates = await self.app.bot.get_updates(
                    offset=offset, timeout=self._poll_timeout, allowed_updates=_ALLOWED_UPDATES
                )
            except (KeyError, TypeError, ValueError) as exc:
                # An update the library cannot parse would come back on every poll and stall
                # the bot for everyone: take the batch raw and skip just the unreadable ones.
                self._offset = await self._skip_unreadable(offset, exc)
                continue
            except InvalidToken:
                _LOGGER.error("telegram: the token was revoked; polling stopped")
                return
            except TelegramError as exc:
                failures += 1
                delay = min(30.0, 2.0**failures)
                if isinstance(exc, RetryAfter):
                    delay = seconds(exc.retry_after) or delay
                _LOGGER.warning("telegram: getUpdates failed (%s); retry in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if not updates:
                continue
            self._in_batch = True
            try:
                await asyncio.gather(*(self.app.process_update(u) for u in updates))
            finally:
                self._in_batch = False
            self._offset = updates[-1].update_id + 1

    async def _confirm(self) -> None:
        """Confirm the batches handled, so whoever receives next does not replay them."""
        if self._offset is None:
            return
        # Over the process's session: PTB's one getUpdates connection may still be held by the
        # long poll just cancelled.
        url = f"{self.config.api_base}/bot{self.config.token}/getUpdates"
        body = {"offset": self._offset, "limit": 1, "timeout": 0}
        try:
            async with asyncio.timeout(3.0), self.core.session.post(url, json=body) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:  # replayed, skipped by already_created
            _LOGGER.info("telegram: could not confirm the last updates (%s)", type(exc).__name__)

    async def _register_commands(self) -> None:
        """The command menu, in English by default and per client language (``language_code``
        takes a two-letter ISO 639-1 code: ``pt`` for pt_BR, ``zh`` for zh_Hant_HK)."""
        for locale in shipped_locales():
            tr = text_for(locale)
            commands = [
                BotCommand(c.name, tr.render(c.menu)) for c in self.handlers.commands if c.menu
            ]
            code = None if locale == "en" else locale.split("_")[0]
            try:
                await self.app.bot.set_my_commands(commands, language_code=code)
            except TelegramError as exc:  # the menu is a convenience; the bot works without it
                _LOGGER.warning(
                    "could not register the Telegram command menu (%s): %s", locale, exc
                )

    async def _raw_updates(self, offset: int | None, limit: int = 100) -> object:
        """``getUpdates`` without waiting, its answer unparsed, over the shared request pool."""
        with warnings.catch_warnings():
            # PTB suggests get_updates, but that parses the batch: the raw answer is the point.
            warnings.simplefilter("ignore", PTBUserWarning)
            kwargs = {"offset": offset, "limit": limit, "timeout": 0}
            return await self.app.bot.do_api_request(
                "getUpdates", api_kwargs={**kwargs, "allowed_updates": _ALLOWED_UPDATES}
            )

    async def _skip_unreadable(self, offset: int | None, exc: Exception) -> int | None:
        raw = await self._raw_updates(offset)
        items = [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
        readable: list[Update] = []
        for item in items:
            try:
                update = Update.de_json(item, self.app.bot)
            except Exception as parse_exc:
                _LOGGER.error(
                    "telegram: skipping update %s that the library cannot read (%s: %s)",
                    item.get("update_id"),
                    type(parse_exc).__name__,
                    parse_exc,
                )
                continue
            if update is not None:
                readable.append(update)
        await asyncio.gather(*(self.app.process_update(u) for u in readable))
        ids = [int(i["update_id"]) for i in items if "update_id" in i]
        if not ids:
            _LOGGER.error("telegram: getUpdates answer unreadable (%s); retrying", exc)
            await asyncio.sleep(5.0)
            return offset
        return max(ids) + 1

    async def quiesce(self) -> None:
        """Stop receiving and give up the leader lock (a standby takes over); replies still go
        out. A batch being handled finishes (its jobs stored) and is confirmed first."""
        self._quiescing.set()
        if self._polling is None:
            return
        if not self._in_batch:
            self._polling.cancel()  # waiting on getUpdates or the lock: nothing half-done
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._polling  # its end releases the leader lock
        await self._confirm()

    async def stop(self) -> None:
        """Stop polling, then the application, in the reverse order of :meth:`start`."""
        await self.actions.close()
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def progress(self, job: Job) -> None:
        """Edit the job's placeholder to show its state (best effort)."""
        shown = self.handlers.guest if self.handlers.guest.owns(job) else self.placeholders
        await shown.progress(job)

    # -- delivery ---------------------------------------------------------------------------

    async def deliver(self, reply: Reply) -> str | None:
        """Send a finished job's reply; map Telegram's refusals to :class:`DeliveryError`."""
        self.placeholders.forget(job := reply.job)  # its live-text throttle, done with
        try:
            if self.handlers.guest.owns(job):  # answered through its guest query
                first = await self.handlers.guest.deliver(reply)
            elif job.kind in (JobKind.STT, JobKind.TEXT):
                first = await self._deliver_transcript(reply, job.placeholder_id)
            else:
                first = await self._deliver_speech(reply, job.placeholder_id)
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        finally:
            self.actions.done(job.id)
        return first

    async def _deliver_transcript(self, out: Reply, placeholder: str | None) -> str | None:
        job = out.job
        reply = transcript_reply(
            job,
            limit=MESSAGE_LIMIT,
            max_messages=self.config.max_messages,
            escape=escape,
            utf16=True,
            tr=text_for(job.origin.locale),
        )
        # Parts already sent by an earlier, interrupted attempt are not sent again.
        done = int(job.extra.get("telegram_parts", 0))
        first: str | None = job.extra.get("telegram_first")
        steps = len(reply.messages) + len(reply.files)
        for index in range(done, steps):
            # Summarize / Translate go under the last piece of a transcript (never a failure).
            markup = _text_buttons(job, out.buttons) if index == steps - 1 else None
            if index < len(reply.messages):
                text = reply.messages[index]
                if index == 0 and placeholder is not None:
                    sent = await self._edit_or_send(job, placeholder, text, markup)
                else:
                    sent = await send_text(self.app.bot, job, text, markup=markup)
            else:
                file = reply.files[index - len(reply.messages)]
                message = await self.app.bot.send_document(
                    job.origin.chat_id,
                    file.data,
                    filename=file.filename,
                    reply_markup=markup,
                    **reply_kwargs(job),
                )
                sent = str(message.message_id)
            first = first or sent
            if index + 1 < steps:
                job = await out.checkpoint(telegram_parts=index + 1, telegram_first=first)
        return first

    async def _deliver_speech(self, reply: Reply, placeholder: str | None) -> str | None:
        job, clip = reply.job, reply.clip
        if job.state is JobState.FAILED or clip is None:
            text = escape(failure_text(job, text_for(job.origin.locale)))
            if placeholder is not None:
                return await self._edit_or_send(job, placeholder, text)
            return await send_text(self.app.bot, job, text)
        sent: str | None = job.extra.get("telegram_voice")
        if sent is None:
            message = await send_voice(self.app.bot, reply, clip)
            sent = str(message.message_id)
            # Recorded before the placeholder clean-up: a crash during that extra round trip
            # must not send the voice message a second time. The file id lets an identical
            # /speak later send the same voice again without uploading it.
            file_id = message.voice.file_id if message.voice else None
            await reply.checkpoint(telegram_voice=sent, telegram_voice_file=file_id)
        if placeholder is not None:
            # The voice message is the answer; a leftover "Synthesizing…" line would only confuse.
            try:
                await self.app.bot.delete_message(job.origin.chat_id, int(placeholder))
            except TelegramError:
                with contextlib.suppress(TelegramError):
                    await self.app.bot.edit_message_text(
                        code_job_id(
                            text_for(job.origin.locale).gettext("✅ Done: job {id}", id=job.id),
                            job.id,
                        ),
                        chat_id=job.origin.chat_id,
                        message_id=int(placeholder),
                        parse_mode=ParseMode.HTML,
                    )
        return sent

    async def _edit_or_send(
        self, job: Job, placeholder: str, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> str:
        try:
            await self.app.bot.edit_message_text(
                text,
                chat_id=job.origin.chat_id,
                message_id=int(placeholder),
                parse_mode="HTML",
                reply_markup=markup,
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return placeholder  # an earlier attempt already put exactly this text there
            # Placeholder deleted (or otherwise not editable): never lose the result.
            _LOGGER.info("job %s: placeholder not editable (%s); replying anew", job.id, exc)
            return await send_text(self.app.bot, job, text, markup=markup)
        return placeholder


def _text_buttons(job: Job, names: tuple[str, ...]) -> InlineKeyboardMarkup | None:
    """The core's text buttons for ``job``, in its requester's language (None: none)."""
    return text_markup(job.id, text_for(job.origin.locale), names) if names else None
