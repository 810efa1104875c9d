"""Answers where the bot is not a member (the app installed to a user): the "Post it" button
under a private transcript, and the DM that carries a reply the 15-minute token cannot."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord.buttons import text_view
from adapters.discord.config import DiscordConfig
from adapters.discord.convert import (
    MESSAGE_LIMIT,
    PLATFORM,
    InteractionRef,
    discord_transcript,
    escape,
    token_dead,
)
from adapters.discord.outbox import NO_MENTIONS, Outbox, to_files
from bot.chat.replies import FileReply
from bot.model.job import Job, JobState
from bot.model.speech import VoiceClip
from bot.text import msg, text_for

if TYPE_CHECKING:
    from bot.service.voice import VoiceService

_LOGGER = logging.getLogger(__name__)
Interaction = discord.Interaction[discord.Client]

POST_PREFIX = "voicebot:post:"
"""custom_id prefix of the "Post it" button; the job id follows (works after a restart)."""
POST_BUTTON = msg("📢 Post it")
NOTHING_TO_POST = msg("Only the person who asked can post this transcript, once it is ready.")
LATE_BY_DM = msg(
    "Discord lets me answer in a conversation I am not part of for 15 minutes only, and this "
    "took longer, so here is your result by DM."
)


def reply_view(job: Job, names: tuple[str, ...]) -> discord.ui.View | None:
    """The buttons under a transcript's last part: the core's text buttons, plus "Post it"
    when only the invoker sees the reply (the Transcribe menu where the bot is not a member)."""
    tr = text_for(job.origin.locale)
    view = text_view(job.id, tr, names) if names else None
    if not job.origin.extra.get("ephemeral"):
        return view
    view = view or discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label=tr.render(POST_BUTTON),
            style=discord.ButtonStyle.primary,
            custom_id=POST_PREFIX + job.id,
        )
    )
    return view


async def send_by_dm(
    outbox: Outbox, job: Job, index: int, text: str, files: Sequence[FileReply]
) -> int:
    """One part of a reply the interaction can no longer carry, sent to the user's DM, the
    first part after a sentence saying why (in the same message when it fits, so a retried
    delivery does not repeat it). No buttons: they act on the original channel."""
    channel = await outbox.dm_channel(int(job.origin.user_id))
    _LOGGER.info("job %s: part %d sent by DM (interaction token expired)", job.id, index)
    if index == 0:
        notice = escape(text_for(job.origin.locale).render(LATE_BY_DM))
        if len(notice) + 2 + len(text) <= MESSAGE_LIMIT:
            return await outbox.send(channel, f"{notice}\n\n{text}", files)
        await outbox.send(channel, notice)
    return await outbox.send(channel, text, files)


async def post_clip_absent(
    outbox: Outbox, job: Job, clip: VoiceClip, ref: InteractionRef | None
) -> int:
    """/speak where the bot is not a member: the voice message goes through the interaction,
    or by DM once its token is gone."""
    if ref is not None:
        try:
            return await outbox.voice_followup(ref, clip)
        except discord.HTTPException as exc:
            if not token_dead(exc):
                raise
    channel = await outbox.dm_channel(int(job.origin.user_id))
    await outbox.send(channel, escape(text_for(job.origin.locale).render(LATE_BY_DM)))
    return await outbox.voice_message(channel, clip)


class PostIt:
    """The "Post it" button: the transcript only its requester saw becomes a public message,
    through the click's own interaction (the bot may not be able to post there)."""

    def __init__(self, service: VoiceService, config: DiscordConfig) -> None:
        self.service = service
        self.config = config

    async def press(self, interaction: Interaction, job_id: str) -> None:
        """Post the job's transcript publicly, or tell the presser why not (privately)."""
        job = await self.service.job(PLATFORM, str(interaction.channel_id), job_id)
        if (
            job is None
            or job.state is not JobState.COMPLETED
            or job.origin.user_id != str(interaction.user.id)
        ):
            text = text_for(interaction.locale.value).render(NOTHING_TO_POST)
            await interaction.response.send_message(escape(text), ephemeral=True)
            return
        reply = discord_transcript(job, self.config.max_messages)
        first: dict[str, Any] = {"files": to_files(reply.files)} if reply.files else {}
        await interaction.response.send_message(
            reply.messages[0], allowed_mentions=NO_MENTIONS, **first
        )
        for part in reply.messages[1:]:
            await interaction.followup.send(part, allowed_mentions=NO_MENTIONS)
        _LOGGER.info("discord: job %s posted publicly by its requester", job.id)
