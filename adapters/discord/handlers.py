"""Discord events and commands: voice messages, the "Transcribe" menu, /speak, /status, /settings
(one decorated method per slash command)."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.cancel import cancel_view
from adapters.discord.config import discord_config
from adapters.discord.convert import (
    PLATFORM,
    bot_absent,
    escape,
    interaction_origin,
    message_origin,
    pick_audio,
    settings_key,
)
from adapters.discord.links import DiscordLinks, first_link
from adapters.discord.texts import discord_help, t
from bot.chat.settings import OUTPUTS, SETTING_NAMES, SETTINGS_USAGE, Prefs, UserSettings
from bot.model.errors import BotError, InputError
from bot.model.speech import Origin
from bot.text import Size, Text, msg, shipped_locales, text_for

if TYPE_CHECKING:
    from bot.app.core import Core

_LOGGER = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
GENERIC_ERROR = msg("Sorry, something went wrong on my side; please try again later.")
NO_AUDIO = msg("That message has no voice message, audio file or link to transcribe.")
NEEDS_MANAGE_SERVER = msg("Changing this server's settings needs the Manage Server permission.")

Interaction = discord.Interaction[discord.Client]
Choice = app_commands.Choice


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


class Handlers(commands.Cog):
    """Turns Discord events into service calls; every failure becomes a short user sentence.

    A Cog only for its way of binding ``app_commands`` methods to an instance: the client is a
    plain :class:`discord.Client` and :meth:`install` adds the commands to its tree.
    """

    def __init__(
        self, core: Core, client: discord.Client, tree: app_commands.CommandTree[discord.Client]
    ) -> None:
        self.core = core
        self.service = core.service
        self.config = discord_config(core.config)
        self.client = client
        self.tree = tree
        self.links = DiscordLinks(self.service)

    def install(self) -> None:
        """Register the message listener, the commands and the error handler."""
        self.client.event(self.on_message)
        self.tree.error(self.on_command_error)
        for command in (*self.get_app_commands(), *self.links.get_app_commands()):
            self.tree.add_command(command)
        # Context menus cannot be methods decorated in a class (discord.py): built here.
        # Also installable to a user: it then works in servers and DMs the bot is not in.
        menu = app_commands.ContextMenu(
            name=t("Transcribe"),
            callback=self.transcribe_menu,
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=True, private_channel=True
            ),
        )
        self.tree.add_command(menu)

    def complete(self, setting: str, current: str) -> list[Choice[str]]:
        """Autocompletion for a setting's value: voices, output modes, interface languages."""
        if setting == "voice":
            options = self.service.preferences.voice_names()
        elif setting == "output":
            options = list(OUTPUTS)
        elif setting == "ui_language":
            options = ["auto", *(c.replace("_", "-") for c in shipped_locales())]
        elif setting in ("diarize", "autotranscribe"):
            options = ["on", "off"]
        else:
            return []
        wanted = current.strip().lower()
        return [Choice(name=o, value=o) for o in options if wanted in o.lower()][:25]

    # -- language and errors ----------------------------------------------------------------

    async def text(self, interaction: Interaction) -> Text:
        """The reader's language: their own choice, the server's, else their Discord client's."""
        try:
            origin = _origin(interaction)
            prefs = await self.service.preferences.for_origin(origin)
            await self._remember_locale(origin.user_id, prefs.user, interaction.locale.value)
            return self.service.preferences.text(origin, prefs)
        except Exception:  # answering in the client's language beats not answering
            _LOGGER.warning("discord: reader's settings unreadable", exc_info=True)
            return text_for(interaction.locale.value)

    async def _remember_locale(self, user_id: str, user: UserSettings, locale: str) -> None:
        """Keep the client language seen on interactions, for the voice messages that person
        sends later (messages carry no locale)."""
        if user.client_locale != locale:
            await self.service.preferences.remember_client_locale(PLATFORM, user_id, locale)

    async def on_command_error(
        self, interaction: Interaction, error: app_commands.AppCommandError
    ) -> None:
        """BotError → its user sentence; anything else is logged and answered generically."""
        cause: BaseException = error
        if isinstance(error, app_commands.CommandInvokeError):
            cause = error.original
        tr = await self.text(interaction)
        if isinstance(cause, BotError):
            text = tr.render(cause.text)
        else:
            _LOGGER.error("discord: command %s failed", interaction.command, exc_info=cause)
            text = tr.render(GENERIC_ERROR)
        try:
            await answer(interaction, text)
        except discord.HTTPException as exc:
            _LOGGER.warning("discord: could not tell the user about an error: %s", exc)

    # -- helpers ----------------------------------------------------------------------------

    async def _download(self, attachment: discord.Attachment) -> bytes:
        limit = self.config.max_download_bytes
        if attachment.size > limit:
            raise InputError(
                msg(
                    "This file is {size}; I can take at most {limit}.",
                    size=Size(attachment.size),
                    limit=Size(limit),
                )
            )
        try:
            return await attachment.read()
        except discord.HTTPException as exc:
            raise BotError(
                f"download of attachment {attachment.id} failed: {exc}",
                user_message=msg("I could not download that file from Discord; please try again."),
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
        try:
            prefs = await self.service.preferences.for_origin(message_origin(message))
            if not prefs.chat.auto_transcribe:
                return
            origin = message_origin(message, locale=prefs.user.client_locale)
            tr = self.service.preferences.text(origin, prefs)
            placeholder = await message.channel.send(
                tr.gettext("🎙 Transcribing…"),
                reference=message.to_reference(fail_if_not_exists=False),
                allowed_mentions=NO_MENTIONS,
                view=cancel_view(tr),
            )
        except discord.HTTPException as exc:
            _LOGGER.warning("discord: cannot reply in channel %s: %s", message.channel.id, exc)
            return
        try:
            await self._transcribe_message(message, attachment, prefs, placeholder)
        except Exception as exc:
            text = tr.render(exc.text if isinstance(exc, BotError) else GENERIC_ERROR)
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
        prefs: Prefs,
        placeholder: discord.Message,
    ) -> None:
        data = await self._download(attachment)
        # The placeholder id goes into the origin: the job is stored with it, so progress and
        # delivery find it however fast the job finishes, and after a restart.
        locale = prefs.user.client_locale
        origin = message_origin(message, placeholder_id=placeholder.id, locale=locale)
        job = await self.service.transcribe(
            origin, data, attachment.filename, prefs=prefs, dedup_key=str(attachment.id)
        )
        _LOGGER.info("discord: job %s for message %s", job.id, message.id)

    # -- commands ---------------------------------------------------------------------------

    async def transcribe_menu(self, interaction: Interaction, message: discord.Message) -> None:
        """Message context menu: works without Message Content (the target is resolved). Where
        the bot is not a member the transcript is private, with a button to post it. A message
        with no recording but a link: that link."""
        attachment = pick_audio(message)
        link = first_link(message) if attachment is None else None
        if link is not None:  # no recording attached, a link to one
            await self.links.start(interaction, link, reply_to=message.id)
            return
        if attachment is None:
            await answer(interaction, (await self.text(interaction)).render(NO_AUDIO))
            return
        private = bot_absent(interaction)
        await interaction.response.defer(thinking=True, ephemeral=private)
        origin = interaction_origin(interaction, reply_to=message.id, ephemeral=private)
        prefs = await self.service.preferences.for_origin(origin)
        data = await self._download(attachment)
        job = await self.service.transcribe(
            origin,
            data,
            attachment.filename,
            prefs=prefs,
            dedup_key=str(attachment.id),
        )
        _LOGGER.info("discord: job %s for menu on message %s", job.id, message.id)

    @app_commands.command(name="speak", description=t("speak"))
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(text=t("speak.text"), voice=t("speak.voice"))
    async def speak(self, interaction: Interaction, text: str, voice: str | None = None) -> None:
        """/speak: defer, queue the synthesis; delivery posts the voice message."""
        await interaction.response.defer(thinking=True)
        origin = interaction_origin(interaction)
        prefs = await self.service.preferences.for_origin(origin)
        job = await self.service.speak(origin, text, prefs=prefs, voice=voice)
        _LOGGER.info("discord: job %s for /speak", job.id)

    @speak.autocomplete("voice")
    async def speak_voice(self, interaction: Interaction, current: str) -> list[Choice[str]]:
        """The voices matching what was typed so far."""
        return self.complete("voice", current)

    @app_commands.command(name="status", description=t("status"))
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(job=t("status.job"))
    async def status(self, interaction: Interaction, job: str | None = None) -> None:
        """/status [job]: this channel's jobs (ephemeral)."""
        tr = await self.text(interaction)
        text = await self.service.status_text(PLATFORM, str(interaction.channel_id), job, tr)
        await answer(interaction, text)

    @app_commands.command(name="voices", description=t("voices"))
    async def voices(self, interaction: Interaction) -> None:
        """/voices: the current TTS model's voices (ephemeral)."""
        tr = await self.text(interaction)
        prefs = await self.service.preferences.for_origin(_origin(interaction))
        await answer(interaction, self.service.preferences.voices(tr, prefs.chat, prefs.user))

    @app_commands.command(name="settings", description=t("settings"))
    @app_commands.describe(
        name=t("settings.name"), value=t("settings.value"), scope=t("settings.scope")
    )
    @app_commands.choices(
        name=[Choice(name=n, value=n) for n in SETTING_NAMES],
        scope=[
            Choice(name=t("scope.chat"), value="chat"),
            Choice(name=t("scope.me"), value="me"),
        ],
    )
    async def settings(
        self,
        interaction: Interaction,
        name: str | None = None,
        value: str | None = None,
        scope: str = "chat",
    ) -> None:
        """/settings: show, or change the server's (needs Manage Server) or one's own."""
        key = settings_key(interaction.guild_id, interaction.channel_id or 0)
        tr = await self.text(interaction)
        if name is None and value is None:
            await answer(interaction, await self._describe(interaction, tr))
            return
        if not name:
            raise InputError(SETTINGS_USAGE)
        user_id = str(interaction.user.id)
        if scope == "me":
            await self.service.preferences.change_user_setting(PLATFORM, user_id, name, value or "")
        elif interaction.guild_id is not None and not interaction.permissions.manage_guild:
            await answer(interaction, tr.render(NEEDS_MANAGE_SERVER))
            return
        else:
            await self.service.change_setting(PLATFORM, key, name, value or "")
        _LOGGER.info("discord: %s changed %s (%s) for %s", user_id, name, scope, key)
        tr = await self.text(interaction)  # ui_language may just have changed
        saved = tr.gettext("Settings updated:")
        await answer(interaction, f"{saved}\n{await self._describe(interaction, tr)}")

    @settings.autocomplete("value")
    async def settings_value(self, interaction: Interaction, current: str) -> list[Choice[str]]:
        """The values of the setting chosen in the same command."""
        return self.complete(str(interaction.namespace.name or ""), current)

    @app_commands.command(name="forget", description=t("forget"))
    async def forget(self, interaction: Interaction) -> None:
        """/forget: delete the caller's jobs in this channel."""
        tr = await self.text(interaction)
        await answer(interaction, await self.service.forget(_origin(interaction), tr))

    @app_commands.command(name="usage", description=t("usage"))
    async def usage(self, interaction: Interaction) -> None:
        """/usage: spend per user and chat (the bot's admins only)."""
        tr = await self.text(interaction)
        await answer(interaction, await self.service.usage_text(_origin(interaction), tr))

    @app_commands.command(name="help", description=t("help"))
    async def help(self, interaction: Interaction) -> None:
        """/help: what the bot does and how."""
        await answer(interaction, discord_help(await self.text(interaction)))

    async def _describe(self, interaction: Interaction, tr: Text) -> str:
        origin = _origin(interaction)
        prefs = await self.service.preferences.for_origin(origin)
        locale = self.service.preferences.ui_locale(origin, prefs.chat, prefs.user)
        return self.service.preferences.describe(prefs.chat, prefs.user, tr=tr, ui_locale=locale)


def _origin(interaction: Interaction) -> Origin:
    return interaction_origin(interaction)
