"""Discord events and commands: voice messages, "Transcribe" menu, /speak, /status, /settings."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from adapters.discord.cancel import cancel_view
from adapters.discord.convert import (
    PLATFORM,
    escape,
    interaction_origin,
    message_origin,
    pick_audio,
    settings_key,
)
from bot.errors import BotError, InputError
from bot.settings import SETTING_NAMES, SETTINGS_USAGE, ChatSettings

if TYPE_CHECKING:
    from bot.app import Core

_LOGGER = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
GENERIC_ERROR = "Sorry, something went wrong on my side; please try again later."
NO_AUDIO = "That message has no voice message or audio file to transcribe."
NEEDS_MANAGE_SERVER = "Changing this server's settings needs the Manage Server permission."
HELP_TEXT = (
    "I turn voice messages into text and text into voice messages.\n"
    "• Send a voice message or an audio file: I reply with the transcript "
    "(in servers this needs the Message Content intent; otherwise use the menu).\n"
    "• Right-click a message → Apps → Transcribe: transcribe any voice message.\n"
    "• /speak text [voice]: I post the text as a voice message.\n"
    "• /status [job]: this channel's recent jobs, or one job in detail.\n"
    "• /cancel [job], or ✖ under the placeholder: stop your queued or running job "
    "(anyone's, with Manage Messages).\n"
    "• /settings [name value]: show or change language, diarize, voice, autotranscribe "
    "(server-wide; changing needs Manage Server).\n"
    "• /forget: delete your jobs (transcripts, audio) in this channel. "
    "/usage: spend per user and chat (bot admins)."
)

Interaction = discord.Interaction[discord.Client]


async def answer(interaction: Interaction, text: str) -> None:
    """Answer only the user who asked, whether or not the interaction was deferred already."""
    text = escape(text)
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        return
    # A public "thinking…" response cannot turn ephemeral: remove it and answer privately.
    with contextlib.suppress(discord.HTTPException):
        await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


class Handlers:
    """Turns Discord events into service calls; every failure becomes a short user sentence."""

    def __init__(
        self, core: Core, client: discord.Client, tree: app_commands.CommandTree[discord.Client]
    ) -> None:
        self.core = core
        self.service = core.service
        self.config = core.config.discord
        self.client = client
        self.tree = tree

    def install(self) -> None:
        """Register the message listener, the commands and the error handler."""
        self.client.event(self.on_message)
        self.tree.error(self.on_command_error)
        self._install_commands()

    def _install_commands(self) -> None:
        tree, handlers = self.tree, self

        @tree.command(name="speak", description="Say a text as a voice message in this channel")
        @app_commands.describe(text="What to say", voice="Voice name (default: this chat's)")
        async def speak(interaction: Interaction, text: str, voice: str | None = None) -> None:
            await handlers.speak(interaction, text, voice)

        @tree.command(name="status", description="This channel's recent jobs, or one job")
        @app_commands.describe(job="A job id, e.g. ab12cd")
        async def status(interaction: Interaction, job: str | None = None) -> None:
            await handlers.status(interaction, job)

        @tree.command(name="settings", description="Show or change this chat's settings")
        @app_commands.describe(name="Setting to change", value="New value (e.g. en, on, af_bella)")
        @app_commands.choices(name=[app_commands.Choice(name=n, value=n) for n in SETTING_NAMES])
        async def settings(
            interaction: Interaction, name: str | None = None, value: str | None = None
        ) -> None:
            await handlers.settings(interaction, name, value)

        @tree.command(name="forget", description="Delete your jobs in this channel")
        async def forget(interaction: Interaction) -> None:
            await answer(
                interaction, await handlers.service.forget(interaction_origin(interaction))
            )

        @tree.command(name="usage", description="Spend per user and chat (bot admins only)")
        async def usage(interaction: Interaction) -> None:
            origin = interaction_origin(interaction)
            await answer(interaction, await handlers.service.usage_text(origin))

        @tree.command(name="help", description="What this bot does and how to use it")
        async def help_(interaction: Interaction) -> None:
            await answer(interaction, HELP_TEXT)

        @tree.context_menu(name="Transcribe")
        async def transcribe(interaction: Interaction, message: discord.Message) -> None:
            await handlers.transcribe_menu(interaction, message)

        del speak, status, settings, forget, usage, help_, transcribe

    # -- errors -----------------------------------------------------------------------------

    async def on_command_error(
        self, interaction: Interaction, error: app_commands.AppCommandError
    ) -> None:
        """BotError → its user sentence; anything else is logged and answered generically."""
        cause: BaseException = error
        if isinstance(error, app_commands.CommandInvokeError):
            cause = error.original
        if isinstance(cause, BotError):
            text = cause.user_message
        else:
            _LOGGER.error("discord: command %s failed", interaction.command, exc_info=cause)
            text = GENERIC_ERROR
        try:
            await answer(interaction, text)
        except discord.HTTPException as exc:
            _LOGGER.warning("discord: could not tell the user about an error: %s", exc)

    # -- helpers ----------------------------------------------------------------------------

    async def _settings_for(self, guild_id: int | None, channel_id: int) -> ChatSettings:
        return await self.service.settings(PLATFORM, settings_key(guild_id, channel_id))

    async def _download(self, attachment: discord.Attachment) -> bytes:
        limit = self.config.max_download_bytes
        if attachment.size > limit:
            raise InputError(
                f"This file is {attachment.size / 1e6:.1f} MB; I can take at most "
                f"{limit / 1e6:.0f} MB."
            )
        try:
            return await attachment.read()
        except discord.HTTPException as exc:
            raise BotError(
                f"download of attachment {attachment.id} failed: {exc}",
                user_message="I could not download that file from Discord; please try again.",
            ) from exc

    # -- voice messages ---------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """Auto-transcribe voice messages and audio files (guilds need Message Content)."""
        if message.author.bot or message.webhook_id is not None:
            return  # our own replies come back through the gateway too
        attachment = pick_audio(message)
        if attachment is None:
            return
        if not self.service.allowed(message_origin(message)):
            return  # denied users, chats and guilds get no answer at all
        guild_id = message.guild.id if message.guild else None
        try:
            settings = await self._settings_for(guild_id, message.channel.id)
            if not settings.auto_transcribe:
                return
            placeholder = await message.channel.send(
                "🎙 Transcribing…",
                reference=message.to_reference(fail_if_not_exists=False),
                allowed_mentions=NO_MENTIONS,
                view=cancel_view(),
            )
        except discord.HTTPException as exc:
            _LOGGER.warning("discord: cannot reply in channel %s: %s", message.channel.id, exc)
            return
        try:
            await self._transcribe_message(message, attachment, settings, placeholder)
        except Exception as exc:
            text = exc.user_message if isinstance(exc, BotError) else GENERIC_ERROR
            if not isinstance(exc, BotError):
                _LOGGER.exception("discord: voice message %s failed", message.id)
            try:
                await placeholder.edit(
                    content=escape(f"❌ {text}"), allowed_mentions=NO_MENTIONS, view=None
                )
            except discord.HTTPException as edit_exc:
                _LOGGER.warning("discord: could not show an error: %s", edit_exc)

    async def _transcribe_message(
        self,
        message: discord.Message,
        attachment: discord.Attachment,
        settings: ChatSettings,
        placeholder: discord.Message,
    ) -> None:
        data = await self._download(attachment)
        # The placeholder id goes into the origin itself, so delivery finds it even if the job
        # finishes before set_progress_message below (fast models) or after a restart.
        origin = message_origin(message, placeholder_id=placeholder.id)
        job = await self.service.transcribe(
            origin, data, attachment.filename, settings=settings, dedup_key=str(attachment.id)
        )
        await self.service.set_progress_message(job.id, str(placeholder.id))
        _LOGGER.info("discord: job %s for message %s", job.id, message.id)

    # -- commands ---------------------------------------------------------------------------

    async def transcribe_menu(self, interaction: Interaction, message: discord.Message) -> None:
        """Message context menu: works without Message Content (the target is resolved)."""
        attachment = pick_audio(message)
        if attachment is None:
            await answer(interaction, NO_AUDIO)
            return
        await interaction.response.defer(thinking=True)
        settings = await self._settings_for(interaction.guild_id, message.channel.id)
        data = await self._download(attachment)
        job = await self.service.transcribe(
            interaction_origin(interaction, reply_to=message.id),
            data,
            attachment.filename,
            settings=settings,
            dedup_key=str(attachment.id),
        )
        _LOGGER.info("discord: job %s for menu on message %s", job.id, message.id)

    async def speak(self, interaction: Interaction, text: str, voice: str | None) -> None:
        """/speak: defer, queue the synthesis; delivery posts the voice message."""
        await interaction.response.defer(thinking=True)
        settings = await self._settings_for(interaction.guild_id, interaction.channel_id or 0)
        job = await self.service.speak(
            interaction_origin(interaction), text, settings=settings, voice=voice
        )
        _LOGGER.info("discord: job %s for /speak", job.id)

    async def status(self, interaction: Interaction, job: str | None) -> None:
        """/status [job]: this channel's jobs (ephemeral)."""
        text = await self.service.status_text(PLATFORM, str(interaction.channel_id), job)
        await answer(interaction, text)

    async def settings(self, interaction: Interaction, name: str | None, value: str | None) -> None:
        """/settings: show, or change (guild-wide changes need Manage Server)."""
        key = settings_key(interaction.guild_id, interaction.channel_id or 0)
        if name is None and value is None:
            current = await self.service.settings(PLATFORM, key)
            await answer(interaction, f"Settings:\n{self.service.describe(current)}")
            return
        if not name:
            raise InputError(SETTINGS_USAGE)
        if interaction.guild_id is not None and not interaction.permissions.manage_guild:
            await answer(interaction, NEEDS_MANAGE_SERVER)
            return
        updated = await self.service.change_setting(PLATFORM, key, name, value or "")
        _LOGGER.info("discord: %s changed %s for %s", interaction.user.id, name, key)
        await answer(interaction, f"Settings updated:\n{self.service.describe(updated)}")
