"""Pure conversions between discord.py objects / wire payloads and the core's dataclasses."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot.chat.replies import FileReply, TranscriptReply, transcript_reply
from bot.model.errors import DeliveryError
from bot.model.job import Job
from bot.model.speech import Origin, VoiceClip
from bot.text import text_for

PLATFORM = "discord"
MESSAGE_LIMIT = 2000
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
FLAG_VOICE_MESSAGE = 1 << 13
VOICE_FILENAME = "voice-message.ogg"
# Interaction tokens live 15 minutes; stop using one a little early so a request in flight at
# the deadline does not fail half-way through a multi-part reply.
TOKEN_LIFETIME = 15 * 60.0
TOKEN_MARGIN = 30.0
# Discord error codes we react to.
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027
VOICE_MESSAGES_REFUSED = 50173

_AUDIO_EXTENSIONS = frozenset(
    {"ogg", "oga", "opus", "mp3", "m4a", "aac", "wav", "flac", "webm", "weba", "amr", "wma"}
)


@dataclass(frozen=True, slots=True)
class InteractionRef:
    """What is needed to answer an interaction later, even after a restart."""

    application_id: int
    token: str
    expires_at: float

    def usable(self, now: float) -> bool:
        """Whether the token can still be used at ``now`` (epoch seconds)."""
        return now < self.expires_at - TOKEN_MARGIN

    def to_extra(self) -> dict[str, Any]:
        """JSON form kept in ``Origin.extra["interaction"]``."""
        return {
            "application_id": str(self.application_id),
            "token": self.token,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> InteractionRef | None:
        """Inverse of :meth:`to_extra`; None when the origin has no interaction."""
        data = extra.get("interaction")
        if not isinstance(data, Mapping) or not data.get("token"):
            return None
        return cls(int(data["application_id"]), str(data["token"]), float(data["expires_at"]))


def escape(text: str) -> str:
    """Escape markdown and defuse mentions (allowed_mentions already stops pings; this stops the
    text from rendering as a highlighted mention or as formatting)."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def is_audio(attachment: discord.Attachment) -> bool:
    """A voice message, or an attachment that says it is audio (by type or file extension)."""
    if attachment.is_voice_message():
        return True
    if (attachment.content_type or "").startswith("audio/"):
        return True
    return attachment.filename.rsplit(".", 1)[-1].lower() in _AUDIO_EXTENSIONS


def pick_audio(message: discord.Message) -> discord.Attachment | None:
    """The attachment to transcribe: the voice message, else the first audio attachment."""
    voice = [a for a in message.attachments if a.is_voice_message()]
    audio = voice or [a for a in message.attachments if is_audio(a)]
    return audio[0] if audio else None


def settings_key(guild_id: int | None, channel_id: int) -> str:
    """Chat id under which settings are stored: guild-wide in servers, per DM channel otherwise."""
    return f"guild:{guild_id}" if guild_id else f"dm:{channel_id}"


def _thread_id(channel: object) -> str | None:
    return str(getattr(channel, "id", "")) if isinstance(channel, discord.Thread) else None


def message_origin(
    message: discord.Message, *, placeholder_id: int | None = None, locale: str | None = None
) -> Origin:
    """Origin of a job started by a message (auto-transcribe); replies reference the message.

    A message does not carry its author's language: ``locale`` is the one last seen on their
    interactions, else the server's (``preferred_locale``, what Discord calls ``guild_locale``).
    """
    guild_id = message.guild.id if message.guild is not None else None
    extra: dict[str, Any] = {"settings_chat": settings_key(guild_id, message.channel.id)}
    if message.guild is not None:
        extra["guild_id"] = str(message.guild.id)
        extra["upload_limit"] = message.guild.filesize_limit
    locale = locale or (message.guild.preferred_locale.value if message.guild else None)
    if locale:
        extra["locale"] = locale
    if placeholder_id is not None:
        extra["placeholder_id"] = str(placeholder_id)
    return Origin(
        platform=PLATFORM,
        chat_id=str(message.channel.id),
        user_id=str(message.author.id),
        reply_to=str(message.id),
        thread_id=_thread_id(message.channel),
        extra=extra,
    )


def interaction_ref(interaction: discord.Interaction[Any]) -> InteractionRef:
    """Token, application id and expiry (creation time + 15 minutes) of an interaction."""
    created = interaction.created_at.timestamp()
    return InteractionRef(interaction.application_id, interaction.token, created + TOKEN_LIFETIME)


def bot_absent(interaction: discord.Interaction[Any]) -> bool:
    """The app answers here only as a user install: the bot is not a member of this server
    (or this is a DM between other people), so it can answer through the interaction but not
    post in the channel. ``authorizing_integration_owners`` names the installs behind the
    interaction: "0" (guild install) holds this guild's id only if the server installed the
    app; ``context`` 1 is a DM with the bot itself."""
    if not interaction.is_user_integration() or interaction.is_guild_integration():
        return False
    return not interaction.context.dm_channel


def interaction_origin(
    interaction: discord.Interaction[Any],
    *,
    reply_to: int | None = None,
    ephemeral: bool = False,
) -> Origin:
    """Origin of a job started by a slash command or the context menu (``ephemeral``: its
    response is seen by the invoker only)."""
    extra: dict[str, Any] = {
        "interaction": interaction_ref(interaction).to_extra(),
        "upload_limit": interaction.filesize_limit,
        "locale": interaction.locale.value,  # the user's client language
        "settings_chat": settings_key(interaction.guild_id, interaction.channel_id or 0),
    }
    if interaction.guild_id is not None:
        extra["guild_id"] = str(interaction.guild_id)
    if bot_absent(interaction):
        extra["bot_absent"] = True
    if ephemeral:
        extra["ephemeral"] = True
    return Origin(
        platform=PLATFORM,
        chat_id=str(interaction.channel_id),
        user_id=str(interaction.user.id),
        reply_to=str(reply_to) if reply_to is not None else None,
        thread_id=_thread_id(interaction.channel),
        extra=extra,
    )


def is_bot_absent(origin: Origin) -> bool:
    """Whether the job came from where the bot is not a member (see :func:`bot_absent`)."""
    return bool(origin.extra.get("bot_absent"))


def placeholder_id(job: Job) -> int | None:
    """The channel message showing this job's progress, if there is one."""
    raw = job.placeholder_id
    return int(raw) if raw else None


def upload_limit(origin: Origin) -> int:
    """Largest attachment the channel takes (interaction's ``attachment_size_limit`` or guild's)."""
    value = origin.extra.get("upload_limit")
    return int(value) if value else DEFAULT_UPLOAD_LIMIT


def files_within(files: Sequence[FileReply], limit: int) -> list[FileReply]:
    """Keep files, in order, while their total stays under the upload limit."""
    kept: list[FileReply] = []
    total = 0
    for item in files:
        if total + len(item.data) <= limit:
            kept.append(item)
            total += len(item.data)
    return kept


def discord_transcript(job: Job, max_messages: int) -> TranscriptReply:
    """A finished transcript as Discord takes it: escaped messages in the job's language, and
    only the files that fit the channel's upload limit."""
    reply = transcript_reply(
        job,
        limit=MESSAGE_LIMIT,
        max_messages=max_messages,
        escape=escape,
        tr=text_for(job.origin.locale),
    )
    return TranscriptReply(
        reply.messages, tuple(files_within(reply.files, upload_limit(job.origin)))
    )


def voice_message_payload(clip: VoiceClip, *, reply_to: int | None = None) -> dict[str, Any]:
    """``payload_json`` of a native voice message: flag 8192, one attachment with metadata."""
    waveform = clip.waveform[:256] or bytes(1)
    payload: dict[str, Any] = {
        "flags": FLAG_VOICE_MESSAGE,
        "attachments": [
            {
                "id": 0,
                "filename": VOICE_FILENAME,
                "duration_secs": round(max(clip.duration, 0.1), 3),
                "waveform": base64.b64encode(waveform).decode("ascii"),
            }
        ],
        "allowed_mentions": {"parse": []},
    }
    if reply_to is not None:
        payload["message_reference"] = {"message_id": str(reply_to), "fail_if_not_exists": False}
    return payload


def voice_message_form(clip: VoiceClip, *, reply_to: int | None = None) -> list[dict[str, Any]]:
    """Multipart form for ``HTTPClient.request(form=...)``; bytes, so a retry resends them."""
    payload = voice_message_payload(clip, reply_to=reply_to)
    return [
        {"name": "payload_json", "value": json.dumps(payload)},
        {
            "name": "files[0]",
            "value": clip.ogg,
            "filename": VOICE_FILENAME,
            "content_type": "audio/ogg",
        },
    ]


def token_dead(exc: discord.HTTPException) -> bool:
    """The interaction token expired or is unknown (answer in the channel instead)."""
    return exc.code in (INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK, UNKNOWN_INTERACTION) or (
        exc.status == 401
    )


def delivery_error(exc: discord.HTTPException) -> DeliveryError | None:
    """Map a refusal to a DeliveryError; None means transient (5xx): let the core retry."""
    detail = f"discord {exc.status} (code {exc.code}): {exc.text}"
    if exc.status == 429:
        retry = getattr(exc, "retry_after", None)
        return DeliveryError(detail, retry_after=float(retry) if retry else 5.0)
    if exc.status >= 500:
        return None
    # 403 (missing access/permissions), 404 (unknown channel) and other 4xx cannot improve.
    return DeliveryError(detail, permanent=True)
