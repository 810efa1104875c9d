"""DiscordAdapter: discord.py client lifecycle in the shared loop, plus delivery and progress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.buttons import DiscordButtons, text_view
from adapters.discord.cancel import DiscordCancel
from adapters.discord.config import discord_config
from adapters.discord.convert import (
    MESSAGE_LIMIT,
    PLATFORM,
    UNKNOWN_MESSAGE,
    VOICE_MESSAGES_REFUSED,
    InteractionRef,
    delivery_error,
    escape,
    files_within,
    placeholder_id,
    token_dead,
    upload_limit,
)
from adapters.discord.handlers import Handlers
from adapters.discord.outbox import Outbox, audio_file
from adapters.discord.translator import CatalogTranslator
from bot.app.supervise import describe
from bot.chat.replies import FileReply, failure_text, progress_text, transcript_reply
from bot.jobs.ports import Leader
from bot.model.errors import BotError, DeliveryError
from bot.model.job import Job, JobKind, JobState
from bot.model.speech import VoiceClip
from bot.text import Msg, text_for

if TYPE_CHECKING:
    from bot.app.core import Core

_LOGGER = logging.getLogger(__name__)


def build_intents(message_content: bool) -> discord.Intents:
    """Only what the bot uses; Message Content is privileged, so it is opt-in."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = message_content
    return intents


class DiscordAdapter:
    """The Discord side of voicebot (see the README's Discord section for the app setup)."""

    platform = PLATFORM

    def __init__(self, core: Core, *, guild_ready_timeout: float = 2.0) -> None:
        self.core = core
        self.config = discord_config(core.config)
        # The bot never joins voice channels: the "PyNaCl/davey not installed" warnings are noise.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        self._guild_ready_timeout = guild_ready_timeout
        self._build()
        self._connect: asyncio.Task[None] | None = None
        self._gateway_lock: Leader | None = None
        self._standby: asyncio.Task[None] | None = None
        self._saved: tuple[str, yarl.URL] | None = None

    def _build(self) -> None:
        # A closed discord.Client cannot log in again cleanly (its loop and connector stay
        # unset), so a reconnect builds a fresh client with its tree, outbox and handlers.
        options: dict[str, Any] = {
            "intents": build_intents(self.config.message_content),
            "allowed_mentions": discord.AllowedMentions.none(),
            "guild_ready_timeout": self._guild_ready_timeout,
        }
        if self.config.shard_count is None:
            self.client = discord.Client(**options)
        else:  # several processes split the gateway: this one runs shard_ids of shard_count
            self.client = discord.AutoShardedClient(
                shard_count=self.config.shard_count,
                shard_ids=list(self.config.shard_ids or range(self.config.shard_count)),
                **options,
            )
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(self.client)
        self.outbox = Outbox(self.client)
        self.handlers = Handlers(self.core, self.client, self.tree)
        self.handlers.install()
        cancel = DiscordCancel(self.core.service, self.show_cancelled)
        buttons = DiscordButtons(self.core.service, cancel)
        buttons.install(self.client)
        for cog in (cancel, buttons):
            for command in cog.get_app_commands():
                self.tree.add_command(command)

    # -- lifecycle --------------------------------------------------------------------------

    def _point_at_endpoints(self) -> None:
        # Class attributes: set for the process, restored on stop (tests run several bots).
        self._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        if self.config.api_base:
            Route.BASE = self.config.api_base.rstrip("/")
        if self.config.gateway_url:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.config.gateway_url)

    def _restore_endpoints(self) -> None:
        if self._saved is not None:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved
            self._saved = None

    async def start(self) -> None:
        """Log in, connect the gateway as a task, wait until ready, then sync commands.

        Raises:
            BotError: the token was rejected, a privileged intent is not enabled, or the gateway
                did not become ready in time.
        """
        self._point_at_endpoints()
        if self.client.is_closed():
            self._build()  # a reconnect after a lost gateway
        try:
            try:
                await self.client.login(self.config.token or "")
            except discord.LoginFailure as exc:
                raise BotError("discord: the bot token was rejected (discord.token)") from exc
            # Several processes on one database: one connects these shards, the others stand
            # by (their replies still go out over REST) and take over when it dies.
            self._gateway_lock = self.core.store.leader(self._gateway_name())
            if not await self._gateway_lock.try_acquire():
                _LOGGER.info("discord: another process has these shards; standing by")
                self._standby = asyncio.create_task(self._take_over(), name="discord-standby")
                return
            await self._connect_gateway()
        except BaseException:
            await self.stop()
            raise

    def _gateway_name(self) -> str:
        user = getattr(self.client.user, "id", "bot")
        count, ids = self.config.shard_count, self.config.shard_ids
        shards = "all" if count is None else f"{count}:{','.join(map(str, ids or range(count)))}"
        return f"discord:{user}:shards:{shards}"

    @property
    def standby(self) -> bool:
        """True while another process holds these shards' gateway: this one only delivers
        (over REST) and takes the gateway over when that process dies."""
        return self._standby is not None and not self._standby.done()

    async def _take_over(self) -> None:
        # A failure to connect ends this task with its error: wait_disconnected raises it and
        # the supervisor reconnects (releasing the lock in between).
        assert self._gateway_lock is not None
        await self._gateway_lock.acquire()
        _LOGGER.info("discord: taking over the gateway")
        await self._connect_gateway()

    async def _connect_gateway(self) -> None:
        self._connect = asyncio.create_task(self.client.connect(), name="discord-gateway")
        await self._wait_ready()
        self._connect.add_done_callback(_log_gateway_end)
        user = self.client.user
        _LOGGER.info("discord: connected as %s (id %s)", user, user.id if user else "?")
        await self._sync_commands()
        self.core.poller.wake()

    async def _wait_ready(self) -> None:
        assert self._connect is not None
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait(
            {ready, self._connect},
            timeout=self.config.ready_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if ready in done:
            return
        ready.cancel()
        if self._connect in done and (exc := self._connect.exception()) is not None:
            if isinstance(exc, discord.PrivilegedIntentsRequired):
                raise BotError(
                    "discord: the Message Content intent is not enabled for this bot; enable it "
                    "in the developer portal (Bot → Privileged Gateway Intents) or set "
                    "discord.message_content: false"
                ) from exc
            raise BotError(f"discord: the gateway connection failed: {exc}") from exc
        _LOGGER.error(
            "discord: gateway not ready after %.0fs (check discord.gateway_url / network)",
            self.config.ready_timeout,
        )
        raise BotError(f"discord: gateway not ready after {self.config.ready_timeout:.0f}s")

    async def _sync_commands(self) -> None:
        try:
            await self.tree.set_translator(CatalogTranslator())
            if self.config.guild_ids:
                for guild_id in self.config.guild_ids:
                    guild = discord.Object(guild_id)
                    self.tree.copy_global_to(guild=guild)
                    await self.tree.sync(guild=guild)
                _LOGGER.info("discord: commands synced to guilds %s", self.config.guild_ids)
            else:
                await self.tree.sync()
                _LOGGER.info("discord: commands synced globally (may take a while to show)")
        except Exception as exc:
            # Commands from an earlier sync keep working; voice messages do not need them.
            _LOGGER.error("discord: command sync failed (the bot runs on): %s", describe(exc))

    async def wait_disconnected(self) -> None:
        """Return when the gateway task ended, raise what ended it (even a parse error). A
        standby first waits to take the gateway over; the holder also watches its shard lock
        (a lost database connection frees it for another process: this one must let go)."""
        if self._standby is not None:
            await asyncio.shield(self._standby)
        if self._connect is None:
            return
        if self._gateway_lock is None:
            await asyncio.shield(self._connect)
            return
        lost = asyncio.create_task(self._gateway_lock.wait_lost(), name="discord-shard-lock")
        try:
            await asyncio.wait({self._connect, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if self._connect.done():
            await self._connect  # its end, or what ended it
            return
        raise BotError("discord: lost the lock on these shards (database connection dropped)")

    async def stop(self) -> None:
        """Close the gateway and HTTP client; restore discord.py's endpoints."""
        if self._standby is not None:
            self._standby.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._standby
            self._standby = None
        try:
            await self.client.close()
            if self._connect is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self._connect, 5)
        finally:
            self._connect = None
            self._restore_endpoints()
            if self._gateway_lock is not None:
                await self._gateway_lock.release()
                self._gateway_lock = None

    # -- delivery ---------------------------------------------------------------------------

    async def deliver(self, job: Job, clip: VoiceClip | None) -> str | None:
        """Send a finished job's reply; see :class:`bot.jobs.worker.Deliverer`."""
        if self.client.is_closed():
            # Shutting down (or not started yet): try again later rather than log a crash.
            raise DeliveryError("discord client is not connected", retry_after=5.0)
        try:
            if job.kind is JobKind.TTS and job.state is JobState.COMPLETED and clip is not None:
                return await self._deliver_voice(job, clip)
            if job.kind is JobKind.TTS:
                tr = text_for(job.origin.locale)
                return await self._deliver_text(job, (escape(failure_text(job, tr)),), ())
            reply = transcript_reply(
                job,
                limit=MESSAGE_LIMIT,
                max_messages=self.config.max_messages,
                escape=escape,
                tr=text_for(job.origin.locale),
            )
            files = files_within(reply.files, upload_limit(job.origin))
            return await self._deliver_text(job, reply.messages, files)
        except discord.HTTPException as exc:
            mapped = delivery_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _live_ref(self, job: Job) -> InteractionRef | None:
        ref = InteractionRef.from_extra(job.origin.extra)
        if ref is None or not ref.usable(self.core.clock()):
            return None
        return ref

    async def _deliver_text(
        self, job: Job, parts: Sequence[str], files: Sequence[FileReply]
    ) -> str | None:
        # Parts already sent by an earlier, interrupted attempt are not sent again.
        sent = job.extra.get("discord_sent") or {}
        first: str | None = sent.get("first")
        for index in range(int(sent.get("count", 0)), len(parts)):
            attach = files if index == 0 else ()
            # Summarize / Translate go under the last part of a transcript.
            view = self._text_buttons(job) if index == len(parts) - 1 else None
            message_id = await self._send_part(job, index, parts[index], attach, view)
            first = first or str(message_id)
            job = await self.core.service.update_job_extra(
                job, discord_sent={"count": index + 1, "first": first}
            )
        return first

    def _text_buttons(self, job: Job) -> discord.ui.View | None:
        names = self.core.service.text_buttons(job)
        return text_view(job.id, text_for(job.origin.locale), names) if names else None

    async def _send_part(
        self,
        job: Job,
        index: int,
        text: str,
        files: Sequence[FileReply],
        view: discord.ui.View | None = None,
    ) -> int:
        ref = self._live_ref(job)
        if ref is not None:
            try:
                return await self._send_interaction_part(ref, index, text, files, view)
            except discord.HTTPException as exc:
                if not token_dead(exc):
                    raise
                _LOGGER.info(
                    "job %s: interaction token no longer valid; replying in channel", job.id
                )
        channel = int(job.origin.chat_id)
        if index == 0:
            placeholder = placeholder_id(job)
            if placeholder is not None:
                try:
                    return await self.outbox.edit(channel, placeholder, text, files, view=view)
                except discord.NotFound:
                    pass  # the placeholder was deleted: post a fresh reply instead
            reply_to = int(job.origin.reply_to) if job.origin.reply_to else None
            return await self.outbox.send(channel, text, files, reply_to=reply_to, view=view)
        return await self.outbox.send(channel, text, files, view=view)

    async def _send_interaction_part(
        self,
        ref: InteractionRef,
        index: int,
        text: str,
        files: Sequence[FileReply],
        view: discord.ui.View | None = None,
    ) -> int:
        if index == 0:
            try:
                return await self.outbox.edit_original(ref, text, files, view=view)
            except discord.NotFound as exc:
                if exc.code != UNKNOWN_MESSAGE:
                    raise  # unknown webhook: the token is dead, the caller falls back
        return await self.outbox.followup(ref, text, files, view=view)

    async def _deliver_voice(self, job: Job, clip: VoiceClip) -> str:
        sent = job.extra.get("discord_sent") or {}
        if sent.get("first"):
            return str(sent["first"])
        ref = self._live_ref(job)
        message_id, posted = await self._post_clip(job, clip, ref)
        await self.core.service.update_job_extra(
            job, discord_sent={"count": 1, "first": str(message_id)}
        )
        if posted and ref is not None:
            guild = job.origin.extra.get("guild_id") or "@me"
            link = f"https://discord.com/channels/{guild}/{job.origin.chat_id}/{message_id}"
            tr = text_for(job.origin.locale)
            length = tr.duration(max(1.0, clip.duration))
            text = tr.gettext(
                "🔊 Voice message posted ({length}): {link}", length=length, link=link
            )
            try:
                await self.outbox.edit_original(ref, text)
            except discord.HTTPException as exc:
                _LOGGER.info("job %s: could not confirm /speak: %s", job.id, exc)
        return str(message_id)

    async def _post_clip(
        self, job: Job, clip: VoiceClip, ref: InteractionRef | None
    ) -> tuple[int, bool]:
        """Post the clip in the channel; returns (message id, whether it went to the channel)."""
        channel = int(job.origin.chat_id)
        try:
            try:
                return await self.outbox.voice_message(channel, clip), True
            except discord.Forbidden as exc:
                if exc.code != VOICE_MESSAGES_REFUSED:
                    raise
                _LOGGER.info("job %s: voice messages refused here (50173); sending a file", job.id)
                return await self.outbox.send(channel, None, [audio_file(clip)]), True
        except discord.Forbidden:
            if ref is None:
                raise
        # The bot may not post in this channel, but the interaction can still answer there.
        return await self.outbox.edit_original(ref, "🔊", [audio_file(clip)]), False

    async def progress(self, job: Job) -> None:
        """Edit the placeholder (or the deferred interaction response) to the job's state."""
        if job.state.terminal or self.client.is_closed():
            return
        text = escape(progress_text(job, text_for(job.origin.locale)))
        ref = self._live_ref(job)
        if ref is not None:
            try:
                await self.outbox.edit_original(ref, text)
                return
            except discord.HTTPException as exc:
                if not token_dead(exc) and not isinstance(exc, discord.NotFound):
                    raise
        placeholder = placeholder_id(job)
        if placeholder is not None:
            with contextlib.suppress(discord.NotFound):
                await self.outbox.edit(
                    int(job.origin.chat_id), placeholder, text, keep_buttons=True
                )

    async def show_cancelled(self, job: Job, message: Msg) -> None:
        """After /cancel: the placeholder (or the command's response) says so, best effort, in
        the language of the job's requester."""
        text = text_for(job.origin.locale).render(message)
        try:
            ref = self._live_ref(job)
            placeholder = placeholder_id(job)
            if placeholder is not None:
                await self.outbox.edit(int(job.origin.chat_id), placeholder, escape(text))
            elif ref is not None:
                await self.outbox.edit_original(ref, escape(text))
        except discord.HTTPException as exc:
            _LOGGER.info("job %s: could not show the cancel: %s", job.id, exc)


def _log_gateway_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _LOGGER.error("discord: gateway connection ended: %s", exc)
