"""DiscordAdapter: discord.py client lifecycle in the shared loop (login, gateway, shards, command
sync); a job's replies are :mod:`adapters.discord.replies`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.buttons import DiscordButtons
from adapters.discord.cancel import DiscordCancel
from adapters.discord.config import discord_config
from adapters.discord.convert import (
    PLATFORM,
)
from adapters.discord.handlers import Handlers
from adapters.discord.outbox import Outbox
from adapters.discord.replies import Replies
from adapters.discord.translator import CatalogTranslator
from adapters.discord.userinstall import POST_PREFIX, PostIt
from bot.app.supervise import describe
from bot.jobs.delivery import Reply
from bot.jobs.leader import Leader
from bot.model.errors import BotError, DeliveryError
from bot.model.job import Job
from bot.text import Msg

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
        # Commands are for servers that installed the app unless they say otherwise: only
        # those that work without the bot in the channel are offered to user installs.
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(
            self.client,
            allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
        )
        self.replies = Replies(Outbox(self.client), self.core.clock, self.config)
        self.handlers = Handlers(self.core, self.client, self.tree)
        self.handlers.install()
        cancel = DiscordCancel(self.core.service, self.show_cancelled)
        buttons = DiscordButtons(self.core.service, cancel)
        buttons.prefixed[POST_PREFIX] = PostIt(self.core.service, self.config).press
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

    async def quiesce(self) -> None:
        """Stop taking gateway events and give up the shard lock (a standby connects these
        shards at once), while replies still go out over REST until :meth:`stop`."""
        await self._end_standby()
        if self._connect is not None:
            self._connect.cancel()  # discord.py's reconnect loop must not bring the gateway back
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connect
            self._connect = None
        shards = getattr(self.client, "shards", None)
        with contextlib.suppress(Exception):
            if isinstance(shards, dict):  # an AutoShardedClient: one gateway per shard
                for shard in shards.values():
                    await shard.disconnect()
            elif self.client.ws is not None:
                await self.client.ws.close(code=1000)
        if self._gateway_lock is not None:
            await self._gateway_lock.release()
            self._gateway_lock = None
        _LOGGER.info("discord: left the gateway (draining; replies still go out)")

    async def _end_standby(self) -> None:
        if self._standby is not None:
            self._standby.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._standby
            self._standby = None

    async def stop(self) -> None:
        """Close the gateway and HTTP client; restore discord.py's endpoints."""
        await self._end_standby()
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

    async def deliver(self, reply: Reply) -> str | None:
        """Send a finished job's reply; see :class:`bot.jobs.delivery.Deliverer`."""
        if self.client.is_closed():
            # Shutting down (or not started yet): try again later rather than log a crash.
            raise DeliveryError("discord client is not connected", retry_after=5.0)
        return await self.replies.deliver(reply)

    async def progress(self, job: Job) -> None:
        """Edit the placeholder (or the deferred interaction response) to the job's state."""
        if job.state.terminal or self.client.is_closed():
            return
        await self.replies.progress(job)

    async def show_cancelled(self, job: Job, message: Msg) -> None:
        """After /cancel: the placeholder (or the command's response) says so, best effort, in
        the language of the job's requester."""
        await self.replies.show_cancelled(job, message)


def _log_gateway_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _LOGGER.error("discord: gateway connection ended: %s", exc)
