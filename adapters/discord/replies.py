"""A job's replies on Discord: the transcript in parts, the voice message, progress and cancel
notices, through the interaction token while it lives, else in the channel."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import discord

from adapters.discord.config import DiscordConfig
from adapters.discord.convert import (
    UNKNOWN_MESSAGE,
    VOICE_MESSAGES_REFUSED,
    InteractionRef,
    delivery_error,
    discord_transcript,
    escape,
    is_bot_absent,
    placeholder_id,
    token_dead,
)
from adapters.discord.outbox import Outbox, audio_file
from adapters.discord.userinstall import post_clip_absent, reply_view, send_by_dm
from bot.chat.replies import FileReply, failure_text, progress_text
from bot.jobs.delivery import Reply
from bot.jobs.live import EditBudget, EditThrottle, partial_text, tail
from bot.model.job import Job, JobKind, JobState
from bot.model.speech import VoiceClip
from bot.text import Msg, text_for

_LOGGER = logging.getLogger(__name__)

# Progress edits per channel: Discord answers 429 past 5 message edits per 5 s in one channel
# (observed bucket, not documented); one is left for the placeholder or the reply itself, and a
# live-text edit of one message goes out at most every 2.5 s.
CHANNEL_BUDGET = EditBudget(per_chat=4, window=5.0, per_message=2.5)
# The text so far stays under the 2,000-character limit with the status line above it.
LIVE_CHARS = 1700


class Replies:
    """Posts and edits what a job says; keeps what it sent in the job row, so a retried
    delivery never posts a part twice."""

    def __init__(
        self,
        outbox: Outbox,
        clock: Callable[[], float],
        config: DiscordConfig,
    ) -> None:
        self.outbox = outbox
        self.clock = clock
        self.config = config
        self.throttle = EditThrottle()

    async def deliver(self, out: Reply) -> str | None:
        """Send a finished job's reply; Discord's refusals become :class:`DeliveryError`."""
        job, clip = out.job, out.clip
        self.throttle.forget(job.id)
        try:
            if job.kind is JobKind.TTS and job.state is JobState.COMPLETED and clip is not None:
                return await self._deliver_voice(out, clip)
            if job.kind is JobKind.TTS:
                tr = text_for(job.origin.locale)
                return await self._deliver_text(out, (escape(failure_text(job, tr)),), ())
            reply = discord_transcript(job, self.config.max_messages)
            return await self._deliver_text(out, reply.messages, reply.files)
        except discord.HTTPException as exc:
            mapped = delivery_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _live_ref(self, job: Job) -> InteractionRef | None:
        ref = InteractionRef.from_extra(job.origin.extra)
        if ref is None or not ref.usable(self.clock()):
            return None
        return ref

    async def _deliver_text(
        self, out: Reply, parts: Sequence[str], files: Sequence[FileReply]
    ) -> str | None:
        job = out.job
        # Parts already sent by an earlier, interrupted attempt are not sent again.
        sent = job.extra.get("discord_sent") or {}
        first: str | None = sent.get("first")
        for index in range(int(sent.get("count", 0)), len(parts)):
            attach = files if index == 0 else ()
            # Summarize / Translate go under the last part of a transcript.
            view = _text_buttons(job, out.buttons) if index == len(parts) - 1 else None
            message_id = await self._send_part(job, index, parts[index], attach, view)
            first = first or str(message_id)
            job = await out.checkpoint(discord_sent={"count": index + 1, "first": first})
        return first

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
                private = bool(job.origin.extra.get("ephemeral"))  # every part, not the 1st
                return await self._send_interaction_part(
                    ref, index, text, files, view, ephemeral=private
                )
            except discord.HTTPException as exc:
                if not token_dead(exc):
                    raise
                _LOGGER.info("job %s: interaction token no longer valid", job.id)
        if is_bot_absent(job.origin):  # the bot cannot post where it is not a member
            return await send_by_dm(self.outbox, job, index, text, files)
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
        *,
        ephemeral: bool = False,
    ) -> int:
        if index == 0:
            try:
                return await self.outbox.edit_original(ref, text, files, view=view)
            except discord.NotFound as exc:
                if exc.code != UNKNOWN_MESSAGE:
                    raise  # unknown webhook: the token is dead, the caller falls back
        return await self.outbox.followup(ref, text, files, view=view, ephemeral=ephemeral)

    async def _deliver_voice(self, out: Reply, clip: VoiceClip) -> str:
        job = out.job
        sent = job.extra.get("discord_sent") or {}
        if sent.get("first"):
            return str(sent["first"])
        ref = self._live_ref(job)
        message_id, posted = await self._post_clip(job, clip, ref)
        await out.checkpoint(discord_sent={"count": 1, "first": str(message_id)})
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
        if is_bot_absent(job.origin):
            return await post_clip_absent(self.outbox, job, clip, ref), False
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
        """Edit the placeholder (or the deferred interaction response) to the job's state and
        the text so far, within the channel's edit budget."""
        text = escape(progress_text(job, text_for(job.origin.locale)))
        partial = partial_text(job)
        if partial:
            text += "\n\n" + escape(tail(partial, LIVE_CHARS))
        ref, placeholder = self._live_ref(job), placeholder_id(job)
        # One message per job (the placeholder or the interaction's response): keyed by job.
        live = partial is not None
        if (ref is None and placeholder is None) or not self.throttle.allow(
            job.origin.chat_id, job.id, text, CHANNEL_BUDGET, live=live
        ):
            return
        if ref is not None:
            try:
                await self.outbox.edit_original(ref, text)
                return
            except discord.HTTPException as exc:
                if not token_dead(exc) and not isinstance(exc, discord.NotFound):
                    raise
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


def _text_buttons(job: Job, names: tuple[str, ...]) -> discord.ui.View | None:
    """The core's text buttons for ``job``, in its requester's language (None: none), and
    "Post it" under a reply only its requester sees."""
    return reply_view(job, names)
