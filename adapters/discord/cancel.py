"""/cancel and the ✖ button under a voice message's placeholder (a message component)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.convert import (
    PLATFORM,
    escape,
    interaction_origin,
    placeholder_id,
    settings_key,
)
from adapters.discord.texts import t
from bot.chat.replies import CANCEL_BUTTON, CANCEL_NOTHING
from bot.model.errors import BotError, InputError
from bot.model.job import Job
from bot.model.speech import Origin
from bot.text import Msg, Text, text_for

if TYPE_CHECKING:
    from bot.service.voice import VoiceService

_LOGGER = logging.getLogger(__name__)
CUSTOM_ID = "voicebot:cancel"
"""The button's custom_id: the placeholder it sits on (the interaction's message) names the job."""

Interaction = discord.Interaction[discord.Client]
ShowCancelled = Callable[[Job, Msg], Awaitable[None]]


def cancel_view(tr: Text) -> discord.ui.View:
    """A view with the ✖ button; answered by :meth:`DiscordCancel.button` (through the one
    dispatcher, :class:`adapters.discord.buttons.DiscordButtons`), not by the view."""
    view = discord.ui.View(timeout=None)
    label = tr.render(CANCEL_BUTTON)
    view.add_item(
        discord.ui.Button(label=label, style=discord.ButtonStyle.secondary, custom_id=CUSTOM_ID)
    )
    return view


def _is_moderator(interaction: Interaction) -> bool:
    # In a server, "a chat's admins" are those who may manage the server or others' messages.
    perms = interaction.permissions
    return interaction.guild_id is None or perms.manage_messages or perms.manage_guild


class DiscordCancel(commands.Cog):
    """Cancels the caller's job (any job of the channel for its moderators)."""

    def __init__(self, service: VoiceService, show: ShowCancelled) -> None:
        self.service = service
        self.show = show

    @app_commands.command(name="cancel", description=t("cancel"))
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(job=t("cancel.job"))
    async def command(self, interaction: Interaction, job: str | None = None) -> None:
        """/cancel [job]: answered privately; the job's placeholder says it too (the ✖ button
        comes through :class:`adapters.discord.buttons.DiscordButtons`, the one component
        dispatcher)."""
        origin = interaction_origin(interaction)
        done = await self.service.cancel(origin, job, admin=_is_moderator(interaction))
        tr = await self.service.preferences.text_for(origin)
        await interaction.response.send_message(escape(tr.render(done.text)), ephemeral=True)
        await self.show(done.job, done.text)

    async def button(self, interaction: Interaction) -> None:
        """The ✖ button: the placeholder becomes the cancel notice, or the presser is told no."""
        if interaction.message is None:
            return
        guild = {"guild_id": str(interaction.guild_id)} if interaction.guild_id else {}
        origin = Origin(
            platform=PLATFORM,
            chat_id=str(interaction.channel_id),
            user_id=str(interaction.user.id),
            extra={
                **guild,
                "locale": interaction.locale.value,
                "settings_chat": settings_key(interaction.guild_id, interaction.channel_id or 0),
            },
        )
        tr = await self.service.preferences.text_for(origin)
        try:
            if not self.service.allowed(origin):
                raise InputError(CANCEL_NOTHING)
            job = await self._job_on(str(interaction.channel_id), interaction.message.id)
            done = await self.service.cancel(origin, job.id, admin=_is_moderator(interaction))
        except BotError as exc:
            await interaction.response.send_message(escape(tr.render(exc.text)), ephemeral=True)
            return
        # One callback (UPDATE_MESSAGE) edits the placeholder and removes the button; it is
        # written in the requester's language (the presser may be a moderator).
        shown = text_for(done.job.origin.locale).render(done.text)
        await interaction.response.edit_message(content=escape(shown), view=None)
        _LOGGER.info("discord: job %s cancelled by button", done.job.id)

    async def _job_on(self, channel_id: str, message_id: int) -> Job:
        for job in await self.service.recent_jobs(PLATFORM, channel_id, limit=50):
            if placeholder_id(job) == message_id:
                return job
        raise InputError(CANCEL_NOTHING)
