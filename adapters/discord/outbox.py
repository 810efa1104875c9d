"""Sending primitives: channel messages, interaction responses by token, native voice messages.

Everything works from plain ids (channel, message, interaction token) so a job can be answered
after a restart, when no discord.py object from the original event exists any more.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import discord
from discord.http import Route, handle_message_parameters
from discord.utils import MISSING

from adapters.discord.convert import InteractionRef, voice_message_form
from bot.chat.replies import FileReply
from bot.model.speech import VoiceClip

NO_MENTIONS = discord.AllowedMentions.none()


def to_files(files: Sequence[FileReply]) -> list[discord.File]:
    """discord.py files from the core's file replies (fresh buffers: a File is single-use)."""
    return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in files]


def audio_file(clip: VoiceClip) -> FileReply:
    """The fallback when voice messages are refused: the same OGG as a plain attachment."""
    return FileReply("speech.ogg", clip.ogg, "audio/ogg")


class Outbox:
    """Sends and edits messages through the client's HTTP layer (rate limits handled there)."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    def _channel(self, channel_id: int) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(channel_id)

    async def send(
        self,
        channel_id: int,
        content: str | None,
        files: Sequence[FileReply] = (),
        *,
        reply_to: int | None = None,
        view: discord.ui.View | None = None,
    ) -> int:
        """Post a message (optionally a reply that survives the original being deleted)."""
        kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
        if view is not None:
            kwargs["view"] = view
        if files:
            kwargs["files"] = to_files(files)
        if reply_to is not None:
            kwargs["reference"] = discord.MessageReference(
                message_id=reply_to, channel_id=channel_id, fail_if_not_exists=False
            )
        message = await self._channel(channel_id).send(content, **kwargs)
        return message.id

    async def edit(
        self,
        channel_id: int,
        message_id: int,
        content: str,
        files: Sequence[FileReply] = (),
        *,
        keep_buttons: bool = False,
        view: discord.ui.View | None = None,
    ) -> int:
        """Replace a bot message's text (and attachments when files are given); its buttons
        (the placeholder's ✖) go unless ``keep_buttons``, or become ``view``'s."""
        partial = self._channel(channel_id).get_partial_message(message_id)
        extra: dict[str, Any] = {} if keep_buttons else {"view": view}
        if files:
            await partial.edit(
                content=content,
                attachments=to_files(files),
                allowed_mentions=NO_MENTIONS,
                **extra,
            )
        else:
            await partial.edit(content=content, allowed_mentions=NO_MENTIONS, **extra)
        return message_id

    async def voice_message(
        self, channel_id: int, clip: VoiceClip, *, reply_to: int | None = None
    ) -> int:
        """Post a native voice message; discord.py has no API for it, so build the request.

        Raises:
            discord.Forbidden: code 50173 when the channel refuses voice messages.
        """
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        data = await self._client.http.request(
            route, form=voice_message_form(clip, reply_to=reply_to)
        )
        return int(data["id"])

    async def dm_channel(self, user_id: int) -> int:
        """Open (or find) the DM channel with ``user_id``; a user who installed the app can be
        written to there even when no server is shared."""
        data = await self._client.http.start_private_message(user_id)
        return int(data["id"])

    # -- interaction responses (the token authenticates them, valid 15 minutes) ---------------

    async def _webhook(
        self,
        method: str,
        path: str,
        ref: InteractionRef,
        *,
        content: str | None,
        files: Sequence[FileReply] = (),
        edit: bool = False,
        ephemeral: bool = False,
        view: discord.ui.View | None = None,
    ) -> int:
        route = Route(
            method,
            "/webhooks/{webhook_id}/{webhook_token}" + path,
            webhook_id=ref.application_id,
            webhook_token=ref.token,
        )
        flags = discord.MessageFlags(ephemeral=True) if ephemeral else MISSING
        attached = to_files(files) if files else MISSING
        with handle_message_parameters(
            content=content,
            attachments=attached if edit else MISSING,
            files=MISSING if edit else attached,
            allowed_mentions=NO_MENTIONS,
            flags=flags,
            view=view if view is not None else MISSING,
        ) as params:
            kwargs: dict[str, Any] = {} if edit else {"params": {"wait": "true"}}
            if params.files:
                data = await self._client.http.request(
                    route, files=params.files, form=params.multipart, **kwargs
                )
            else:
                data = await self._client.http.request(route, json=params.payload, **kwargs)
        return int(data["id"])

    async def edit_original(
        self,
        ref: InteractionRef,
        content: str,
        files: Sequence[FileReply] = (),
        *,
        view: discord.ui.View | None = None,
    ) -> int:
        """Replace the interaction's original (e.g. deferred "thinking…") response."""
        return await self._webhook(
            "PATCH", "/messages/@original", ref, content=content, files=files, edit=True, view=view
        )

    async def followup(
        self,
        ref: InteractionRef,
        content: str,
        files: Sequence[FileReply] = (),
        *,
        ephemeral: bool = False,
        view: discord.ui.View | None = None,
    ) -> int:
        """Send a follow-up message to the interaction."""
        return await self._webhook(
            "POST", "", ref, content=content, files=files, ephemeral=ephemeral, view=view
        )

    async def voice_followup(self, ref: InteractionRef, clip: VoiceClip) -> int:
        """Send a native voice message as the interaction's follow-up (after a deferred
        response it takes the place of "thinking…"): where the bot is not a member, the
        interaction is its only way into the channel."""
        route = Route(
            "POST",
            "/webhooks/{webhook_id}/{webhook_token}",
            webhook_id=ref.application_id,
            webhook_token=ref.token,
        )
        data = await self._client.http.request(
            route, form=voice_message_form(clip), params={"wait": "true"}
        )
        return int(data["id"])
