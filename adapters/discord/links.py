"""Links on Discord: ``/transcribe url:`` and the "Transcribe" message menu on a message with a
link (no voice message or audio file): a link job answered like the menu's transcripts (through
the interaction; privately, with "Post it", where the bot is not a member). A refusal reaches
the tree's error handler and is answered privately with its sentence."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.convert import bot_absent, interaction_origin
from adapters.discord.texts import t
from bot.links import find_links

if TYPE_CHECKING:
    from bot.service.voice import VoiceService

_LOGGER = logging.getLogger(__name__)
Interaction = discord.Interaction[discord.Client]


def first_link(message: discord.Message) -> str | None:
    """The first http(s) link of a message's text (the menu's target is resolved with its
    content, Message Content intent or not)."""
    found = find_links(message.content or "")
    return found[0] if found else None


class DiscordLinks(commands.Cog):
    """``/transcribe url:``, and the link half of the Transcribe menu."""

    def __init__(self, service: VoiceService) -> None:
        self.service = service

    @app_commands.command(name="transcribe", description=t("transcribe"))
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(url=t("transcribe.url"))
    async def transcribe(self, interaction: Interaction, url: str) -> None:
        """/transcribe url: a recording or video on the web."""
        await self.start(interaction, url)

    async def start(self, interaction: Interaction, url: str, reply_to: int | None = None) -> None:
        """Defer (the metadata can take seconds), then create the link job; the deferred
        response becomes the transcript, or, refused, a private sentence."""
        private = bot_absent(interaction)
        await interaction.response.defer(thinking=True, ephemeral=private)
        origin = interaction_origin(interaction, reply_to=reply_to, ephemeral=private)
        prefs = await self.service.preferences.for_origin(origin)
        job = await self.service.transcribe_link(origin, url, prefs=prefs)
        _LOGGER.info("discord: job %s for a link (%s)", job.id, interaction.command)
