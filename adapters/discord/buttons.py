"""Message buttons: one component-interaction dispatcher for ✖ Cancel, Summarize and Translate."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.cancel import CUSTOM_ID as CANCEL_ID
from adapters.discord.cancel import DiscordCancel
from adapters.discord.convert import interaction_origin
from adapters.discord.handlers import answer
from adapters.discord.texts import t
from bot.chat.replies import ENGLISH_BUTTON, SUMMARIZE_BUTTON, TRANSLATE_BUTTON, text_job_toast
from bot.model.errors import BotError
from bot.text import ENGLISH, Msg, Text

if TYPE_CHECKING:
    from bot.service.voice import VoiceService

_LOGGER = logging.getLogger(__name__)
Interaction = discord.Interaction[discord.Client]
# custom_id (at most 100 characters) → the service's action; the job id follows the prefix.
TEXT_ACTIONS = {
    "voicebot:sum:": "summary",
    "voicebot:tr:": "translate",
    "voicebot:en:": "translate",
}
ENGLISH_PREFIX = "voicebot:en:"
# The service's button names (VoiceService.text_buttons) → custom_id prefix and label.
_BUTTONS: dict[str, tuple[str, Msg]] = {
    "summary": ("voicebot:sum:", SUMMARIZE_BUTTON),
    "translate": ("voicebot:tr:", TRANSLATE_BUTTON),
    "english": (ENGLISH_PREFIX, ENGLISH_BUTTON),
}


def text_view(
    job_id: str, tr: Text = ENGLISH, names: tuple[str, ...] = ("summary", "translate")
) -> discord.ui.View:
    """Summarize / Translate (or Translate → English) under a finished transcript; answered by
    the dispatcher (the ids name the job, so the buttons work after a restart, with no view
    state in memory)."""
    view = discord.ui.View(timeout=None)
    for name in names:
        prefix, label = _BUTTONS[name]
        view.add_item(
            discord.ui.Button(
                label=tr.render(label),
                style=discord.ButtonStyle.secondary,
                custom_id=prefix + job_id,
            )
        )
    return view


class DiscordButtons(commands.Cog):
    """The one ``on_interaction`` listener for components (routes by ``custom_id``), and the
    /summarize and /translate commands that do what its buttons do."""

    def __init__(self, service: VoiceService, cancel: DiscordCancel) -> None:
        self.service = service
        self.cancel = cancel
        # Further buttons by custom_id prefix (the job id follows), registered by their owners.
        self.prefixed: dict[str, Callable[[Interaction, str], Awaitable[None]]] = {}

    def install(self, client: discord.Client) -> None:
        """Listen to interactions (slash commands stay with the command tree)."""
        client.event(self.on_interaction)

    async def on_interaction(self, interaction: Interaction) -> None:
        """A button press: cancel, or a summary/translation of the transcript it sits under."""
        if interaction.type is not discord.InteractionType.component:
            return
        custom_id = str(dict(interaction.data or {}).get("custom_id", ""))
        if custom_id == CANCEL_ID:
            await self.cancel.button(interaction)
            return
        for prefix, press in self.prefixed.items():
            if custom_id.startswith(prefix):
                await press(interaction, custom_id.removeprefix(prefix))
                return
        for prefix, action in TEXT_ACTIONS.items():
            if custom_id.startswith(prefix):
                english = "en" if prefix == ENGLISH_PREFIX else None
                job_id = custom_id.removeprefix(prefix)
                await self.text_action(interaction, action, job_id, english)
                return

    async def text_action(
        self, interaction: Interaction, action: str, job_id: str, language: str | None = None
    ) -> None:
        """A button under a transcript: the job replies to that message (``language``: the
        button's own, else the presser's)."""
        message = interaction.message
        await self.start(interaction, action, job_id, language, message.id if message else None)

    async def start(
        self,
        interaction: Interaction,
        action: str,
        job_id: str,
        language: str | None,
        reply_to: int | None,
    ) -> None:
        """A durable job answering in the interaction's (public) response; asked again (by
        anyone), the asker is told privately which job made it."""
        # Under a private transcript (the app used where the bot is not), the answer is
        # private too, with its own "Post it".
        private = bool(interaction.message and interaction.message.flags.ephemeral)
        origin = interaction_origin(interaction, reply_to=reply_to, ephemeral=private)
        origin = replace(origin, extra={**origin.extra, "source": f"ci:{interaction.id}"})
        if not self.service.allowed(origin):
            return
        # Deferred at once (Discord wants an answer within 3 s); the "thinking…" response is
        # the new job's placeholder, which its delivery edits.
        await interaction.response.defer(thinking=True, ephemeral=private)
        tr = await self.service.preferences.text_for(origin)
        language = language or (str(interaction.locale.value) if interaction.locale else None)
        try:
            job = await self.service.text_job(origin, job_id, action, language)
        except BotError as exc:
            await answer(interaction, tr.render(exc.text))
            return
        if job.origin.extra.get("source") != origin.extra["source"]:  # made before: say which
            await answer(interaction, text_job_toast(job, fresh=False, tr=tr))
            return
        _LOGGER.info("discord: job %s (%s of %s)", job.id, action, job_id)

    @app_commands.command(name="summarize", description=t("summarize"))
    @app_commands.describe(job=t("text.job"), language=t("text.language"))
    async def summarize(
        self, interaction: Interaction, job: str, language: str | None = None
    ) -> None:
        """/summarize JOB [language]: a summary of a transcript named by its job id."""
        await self.start(interaction, "summary", job.strip(), language, None)

    @app_commands.command(name="translate", description=t("translate"))
    @app_commands.describe(job=t("text.job"), language=t("text.language"))
    async def translate(
        self, interaction: Interaction, job: str, language: str | None = None
    ) -> None:
        """/translate JOB [language]: a translation of a transcript named by its job id."""
        await self.start(interaction, "translate", job.strip(), language, None)
