"""State of the fake Discord (ids, users, guild, channels, messages) and its wire payloads."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
SEND_VOICE_MESSAGES = 1 << 46
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
    | SEND_VOICE_MESSAGES
)

# Gateway intents.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_VOICE_MESSAGE = 1 << 13

# Channel and message types.
CHANNEL_TEXT = 0
CHANNEL_DM = 1
CHANNEL_PUBLIC_THREAD = 11
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20
MESSAGE_CONTEXT_MENU_COMMAND = 23


def now_iso() -> str:
    """Return the current time as Discord's ISO 8601 timestamp."""
    return datetime.now(UTC).isoformat()


def make_waveform(samples: int = 64) -> str:
    """Return a valid base64 waveform (one byte per sample; Discord allows up to 256)."""
    return base64.b64encode(bytes((i * 37) % 256 for i in range(samples))).decode()


class SnowflakeFactory:
    """Issues increasing snowflakes whose timestamp part is the current time."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(value, self._last + 1)
        return self._last


@dataclass(frozen=True, slots=True)
class FakeIds:
    """Snowflakes of everything the fake starts with; pass your own to FakeDiscord(ids=...)."""

    application: int = 1_100_000_000_000_000_001
    bot: int = 1_100_000_000_000_000_001  # a bot user shares its application's id
    guild: int = 1_100_000_000_000_000_100
    text_channel: int = 1_100_000_000_000_000_101
    other_channel: int = 1_100_000_000_000_000_102
    thread: int = 1_100_000_000_000_000_103
    dm_channel: int = 1_100_000_000_000_000_104  # DM between the bot and `member`
    owner: int = 1_100_000_000_000_000_200
    member: int = 1_100_000_000_000_000_201
    admin: int = 1_100_000_000_000_000_202  # has MANAGE_GUILD through admin_role
    admin_role: int = 1_100_000_000_000_000_301
    bot_role: int = 1_100_000_000_000_000_302
    # A server `member` is in and the bot is not (the app reaches it only as a user install).
    foreign_guild: int = 1_100_000_000_000_000_400
    foreign_channel: int = 1_100_000_000_000_000_401


def user_payload(uid: int, username: str, *, bot: bool = False) -> JSON:
    """Return a User object."""
    return {
        "id": str(uid),
        "username": username,
        "discriminator": "0",
        "global_name": None if bot else username.capitalize(),
        "avatar": None,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "bot": bot,
        "system": False,
        "public_flags": 0,
    }


def role_payload(rid: int, name: str, perms: int, position: int, *, bot_id: int = 0) -> JSON:
    """Return a Role object (a managed bot role when ``bot_id`` is given)."""
    role: JSON = {
        "id": str(rid),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(perms),
        "managed": bool(bot_id),
        "mentionable": False,
        "flags": 0,
    }
    if bot_id:
        role["tags"] = {"bot_id": str(bot_id)}
    return role


class FakeWorld:
    """Users, one guild with channels and a thread, DM channels, messages and uploaded files."""

    def __init__(self, ids: FakeIds) -> None:
        self.ids = ids
        # The server's language (guild ``preferred_locale``, interactions' ``guild_locale``) and
        # each user's client language (interactions' ``locale``); Discord's default is en-US.
        self.guild_locale = "en-US"
        self.user_locales: dict[int, str] = {}
        self.snowflake = SnowflakeFactory()
        self.created = now_iso()
        self.users: dict[int, JSON] = {
            ids.bot: user_payload(ids.bot, "voicebot", bot=True),
            ids.owner: user_payload(ids.owner, "owner"),
            ids.member: user_payload(ids.member, "alice"),
            ids.admin: user_payload(ids.admin, "bob"),
        }
        self.roles: dict[int, JSON] = {
            ids.guild: role_payload(ids.guild, "@everyone", EVERYONE_PERMISSIONS, 0),
            ids.admin_role: role_payload(ids.admin_role, "Admin", MANAGE_GUILD, 2),
            ids.bot_role: role_payload(
                ids.bot_role, "voicebot", EVERYONE_PERMISSIONS, 1, bot_id=ids.bot
            ),
        }
        self.member_roles: dict[int, list[int]] = {
            ids.bot: [ids.bot_role],
            ids.owner: [],
            ids.member: [],
            ids.admin: [ids.admin_role],
        }
        self.channels: dict[int, JSON] = {}
        for cid, name, pos in (
            (ids.text_channel, "general", 0),
            (ids.other_channel, "voice-notes", 1),
        ):
            self.channels[cid] = self._text_channel(cid, name, pos)
        self.channels[ids.thread] = self._thread(ids.thread, ids.text_channel)
        self.channels[ids.foreign_channel] = self._text_channel(
            ids.foreign_channel, "elsewhere", 0, guild=ids.foreign_guild
        )
        self.dm_by_user: dict[int, int] = {}
        self.add_dm_channel(ids.member, ids.dm_channel)
        self.messages: dict[int, JSON] = {}
        self.deleted_messages: dict[int, JSON] = {}
        self.files: dict[int, tuple[bytes, str]] = {}

    # --- channels --------------------------------------------------------------------------

    def _text_channel(self, cid: int, name: str, position: int, guild: int = 0) -> JSON:
        return {
            "id": str(cid),
            "type": CHANNEL_TEXT,
            "guild_id": str(guild or self.ids.guild),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }

    def _thread(self, cid: int, parent: int) -> JSON:
        return {
            "id": str(cid),
            "type": CHANNEL_PUBLIC_THREAD,
            "guild_id": str(self.ids.guild),
            "parent_id": str(parent),
            "owner_id": str(self.ids.member),
            "name": "transcripts",
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 2,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": self.created,
                "locked": False,
                "create_timestamp": self.created,
            },
        }

    def add_dm_channel(self, user_id: int, channel_id: int | None = None) -> int:
        """Return the DM channel between the bot and ``user_id``, creating it if needed."""
        if user_id in self.dm_by_user:
            return self.dm_by_user[user_id]
        cid = channel_id or self.snowflake()
        self.channels[cid] = {
            "id": str(cid),
            "type": CHANNEL_DM,
            "last_message_id": None,
            "recipients": [self.users[user_id]],
            "flags": 0,
        }
        self.dm_by_user[user_id] = cid
        return cid

    def is_guild_channel(self, channel_id: int) -> bool:
        """Whether ``channel_id`` belongs to the guild (text channel or thread)."""
        channel = self.channels.get(channel_id)
        return channel is not None and "guild_id" in channel

    def bot_absent(self, channel_id: int) -> bool:
        """Whether ``channel_id`` is in a server the bot is not a member of: it gets no gateway
        events from there and its bot-token requests there fail (403 Missing Access)."""
        channel = self.channels.get(channel_id)
        return channel is not None and channel.get("guild_id") not in (None, str(self.ids.guild))

    # --- guild -----------------------------------------------------------------------------

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions of a member (no channel overwrites exist in the fake)."""
        if user_id == self.ids.owner:
            return ALL_PERMISSIONS
        perms = EVERYONE_PERMISSIONS
        for rid in self.member_roles.get(user_id, []):
            perms |= int(self.roles[rid]["permissions"])
        return perms

    def member_payload(self, user_id: int, *, with_user: bool = True, perms: bool = False) -> JSON:
        """Return a guild Member object (``perms`` adds the interaction ``permissions`` string)."""
        member: JSON = {
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in self.member_roles.get(user_id, [])],
            "joined_at": self.created,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self.users[user_id]
        if perms:
            member["permissions"] = str(self.permissions_of(user_id))
        return member

    def guild_payload(self) -> JSON:
        """Return the GUILD_CREATE payload: guild, roles, members, channels and threads."""
        channels = [c for c in self.channels.values() if c["type"] == CHANNEL_TEXT]
        threads = [c for c in self.channels.values() if c["type"] == CHANNEL_PUBLIC_THREAD]
        members = [self.member_payload(uid) for uid in self.member_roles]
        return {
            "id": str(self.ids.guild),
            "name": "Voice Lab",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.ids.owner),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": self.guild_locale,
            "system_channel_id": str(self.ids.text_channel),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": list(self.roles.values()),
            "max_members": 500000,
            "joined_at": self.created,
            "large": False,
            "unavailable": False,
            "member_count": len(members),
            "members": members,
            "channels": channels,
            "threads": threads,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # --- messages and attachments ------------------------------------------------------------

    def add_file(
        self,
        data: bytes,
        filename: str,
        content_type: str,
        base_url: str,
        channel_id: int,
        **extra: Any,
    ) -> JSON:
        """Store bytes and return an Attachment object whose URLs point at the fake."""
        aid = self.snowflake()
        self.files[aid] = (data, content_type)
        expires = f"{int(time.time()) + 86400:x}"
        path = f"attachments/{channel_id}/{aid}/{filename}?ex={expires}&is={expires}&hm=fake"
        attachment: JSON = {
            "id": str(aid),
            "filename": filename,
            "size": len(data),
            "url": f"{base_url}/{path}",
            "proxy_url": f"{base_url}/media/{path}",
            "content_type": content_type,
            "flags": 0,
        }
        attachment.update({k: v for k, v in extra.items() if v is not None})
        return attachment

    def new_message(
        self,
        channel_id: int,
        author_id: int,
        *,
        content: str = "",
        attachments: Sequence[JSON] = (),
        flags: int = 0,
        mentions: Iterable[int] = (),
        reference_id: int | None = None,
        **extra: Any,
    ) -> JSON:
        """Create, store and return a Message object (REST shape: no ``member``)."""
        mid = self.snowflake()
        message: JSON = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.users.get(author_id) or user_payload(author_id, f"user{author_id}"),
            "content": content,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.users[u] for u in mentions if u in self.users],
            "mention_roles": [],
            "attachments": list(attachments),
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": MESSAGE_DEFAULT,
            "flags": flags,
        }
        if self.is_guild_channel(channel_id):
            message["guild_id"] = self.channels[channel_id]["guild_id"]
        if reference_id is not None:
            message["type"] = MESSAGE_REPLY
            message["message_reference"] = {
                "type": 0,
                "message_id": str(reference_id),
                "channel_id": str(channel_id),
                **({"guild_id": message["guild_id"]} if "guild_id" in message else {}),
            }
            message["referenced_message"] = self.messages.get(reference_id)
        message.update(extra)
        self.messages[mid] = message
        if channel_id in self.channels:
            self.channels[channel_id]["last_message_id"] = str(mid)
        return message

    def gateway_message(self, message: JSON) -> JSON:
        """Return ``message`` as MESSAGE_CREATE carries it (adds the author's ``member``)."""
        event = dict(message)
        author_id = int(message["author"]["id"])
        if "guild_id" in message and author_id in self.member_roles:
            event["member"] = self.member_payload(author_id, with_user=False)
        return event
