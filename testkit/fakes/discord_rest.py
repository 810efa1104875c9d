"""REST routes of the fake Discord: login, gateway, command sync, channels and messages."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from testkit.fakes.discord_http import JSON, RecordedPart, RecordedRequest, Reply, error, form_error
from testkit.fakes.discord_world import (
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_VOICE_MESSAGE,
    now_iso,
)

if TYPE_CHECKING:
    from testkit.fakes.discord import FakeDiscord

Handler = Callable[[RecordedRequest, "re.Match[str]"], Awaitable[Reply]]

UNKNOWN_CHANNEL = error(404, 10003, "Unknown Channel")
UNKNOWN_MESSAGE = error(404, 10008, "Unknown Message")
_MAX_CONTENT = 2000
_EDITABLE_FLAGS = FLAG_SUPPRESS_EMBEDS


@dataclass(slots=True)
class Composed:
    """The parts of a new message taken from a create body."""

    content: str
    attachments: list[JSON]
    flags: int
    extra: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Route:
    """One route: method, path regex (named groups), handler and whether a bot token is needed."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    bot_auth: bool = True


class Messages:
    """Builds, validates and edits messages from request bodies (channels and webhooks share it)."""

    def __init__(self, host: FakeDiscord) -> None:
        self._host = host

    def compose(self, req: RecordedRequest, payload: JSON, channel_id: int) -> Composed | Reply:
        """Validate a create body like Discord does and return what the new message holds.

        ``payload`` is the message body (``req.json`` for channels, its ``data`` for callbacks);
        ``req`` supplies the multipart ``files[n]`` parts.
        """
        content = payload.get("content") or ""
        flags = int(payload.get("flags") or 0)
        attachments = self.attachments(req, payload, channel_id, [])
        if isinstance(attachments, Reply):
            return attachments
        if len(content) > _MAX_CONTENT:
            return form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        has_body = content or attachments or payload.get("embeds") or payload.get("components")
        if not has_body and not payload.get("sticker_ids") and not payload.get("poll"):
            return error(400, 50006, "Cannot send an empty message")
        if flags & FLAG_VOICE_MESSAGE and (refusal := self._voice_refusal(content, attachments)):
            return refusal
        extra: JSON = {
            k: payload[k] for k in ("embeds", "components", "nonce", "tts") if k in payload
        }
        return Composed(content, attachments, flags, extra)

    def _voice_refusal(self, content: str, attachments: list[JSON]) -> Reply | None:
        if content:
            return error(400, 50159, "Voice messages do not support additional content.")
        if len(attachments) != 1 or not str(attachments[0].get("content_type")).startswith(
            "audio/"
        ):
            return error(400, 50160, "Voice messages must have a single audio attachment.")
        att = attachments[0]
        if att.get("duration_secs") is None or not att.get("waveform"):
            return error(400, 50161, "Voice messages must have supporting metadata.")
        try:
            base64.b64decode(att["waveform"], validate=True)
        except (binascii.Error, ValueError):
            return form_error("attachments.0.waveform", "BASE64_INVALID", "Invalid base64.")
        if self._host.refuse_voice_messages:
            return error(403, 50173, "You cannot send voice messages in this channel.")
        return None

    def attachments(
        self, req: RecordedRequest, payload: JSON, channel_id: int, existing: list[JSON]
    ) -> list[JSON] | Reply:
        """New attachment list: ``payload["attachments"]`` entries refer to ``files[n]``
        uploads (by index) or to ``existing`` attachments (by id); unlisted uploads are appended.
        Without an ``attachments`` key the existing ones are kept."""
        uploads = {int(p.name[6:-1]): p for p in req.files}
        for part in uploads.values():
            if len(part.data) > self._host.upload_limit:
                return error(413, 40005, "Request entity too large")
        by_id = {a["id"]: a for a in existing}
        meta = payload.get("attachments")
        result = [] if meta is not None else list(existing)
        for item in meta or []:
            key = int(item["id"])
            if key in uploads:
                result.append(self._upload(uploads.pop(key), item, channel_id))
            elif str(key) in by_id:
                result.append(by_id[str(key)])
        result.extend(self._upload(part, {}, channel_id) for part in uploads.values())
        return result

    def _upload(self, part: RecordedPart, item: JSON, channel_id: int) -> JSON:
        filename = item.get("filename") or part.filename or "file"
        content_type = part.content_type
        if content_type in ("", "application/octet-stream"):
            # Discord derives the type from the file name; discord.py always sends octet-stream.
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        keys = ("description", "duration_secs", "waveform", "title")
        extra = {k: item[k] for k in keys if k in item}
        return self._host.world.add_file(
            part.data, filename, content_type, self._host.base_url, channel_id, **extra
        )

    def edit(self, req: RecordedRequest, payload: JSON, message: JSON) -> Reply | None:
        """Apply an edit body to ``message`` in place; returns an error Reply or None."""
        if message["author"]["id"] != str(self._host.ids.bot):
            return error(403, 50005, "Cannot edit a message authored by another user")
        if message.get("flags", 0) & FLAG_VOICE_MESSAGE:
            return error(400, 50162, "Voice messages cannot be edited.")
        channel_id = int(message["channel_id"])
        attachments = self.attachments(req, payload, channel_id, message["attachments"])
        if isinstance(attachments, Reply):
            return attachments
        if len(payload.get("content") or "") > _MAX_CONTENT:
            return form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        for key in ("content", "embeds", "components"):
            if key in payload:
                message[key] = (
                    payload[key] if payload[key] is not None else ([] if key != "content" else "")
                )
        if "flags" in payload and payload["flags"] is not None:
            keep = message["flags"] & ~_EDITABLE_FLAGS
            message["flags"] = keep | (int(payload["flags"]) & _EDITABLE_FLAGS)
        message["flags"] &= ~FLAG_LOADING
        message["attachments"] = attachments
        message["edited_timestamp"] = now_iso()
        return None


class RestRoutes:
    """Bot-token routes: users, application, gateway, commands, channels and messages."""

    def __init__(self, host: FakeDiscord) -> None:
        self._host = host
        self.messages = Messages(host)

    def routes(self) -> list[Route]:
        """The route table (paths are relative to ``/api/v10``)."""
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/users/@me", self.get_me),
            ("POST", r"/users/@me/channels", self.create_dm),
            ("GET", r"/(?:oauth2/)?applications/@me", self.get_application),
            ("GET", r"/gateway(?:/bot)?", self.get_gateway),
            (
                "GET",
                r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild>\d+))?/commands",
                self.get_commands,
            ),
            (
                "PUT",
                r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild>\d+))?/commands",
                self.put_commands,
            ),
            (
                "POST",
                r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild>\d+))?/commands",
                self.post_command,
            ),
            ("GET", r"/channels/(?P<channel>\d+)", self.get_channel),
            ("POST", r"/channels/(?P<channel>\d+)/typing", self.typing),
            ("GET", r"/channels/(?P<channel>\d+)/messages", self.list_messages),
            ("POST", r"/channels/(?P<channel>\d+)/messages", self.create_message),
            ("GET", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self.get_message),
            ("PATCH", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self.edit_message),
            (
                "DELETE",
                r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)",
                self.delete_message,
            ),
            (
                "PUT",
                r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/reactions/[^/]+/@me",
                self.react,
            ),
        ]
        return [Route(m, re.compile(p), h) for m, p, h in table]

    async def get_me(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``GET /users/@me``: the bot user."""
        me = dict(self._host.world.users[self._host.ids.bot])
        me.update(
            {"verified": True, "mfa_enabled": False, "flags": 0, "email": None, "locale": "en-US"}
        )
        return Reply(200, me)

    async def create_dm(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``POST /users/@me/channels``: open (or return) the DM with ``recipient_id``."""
        uid = int((req.json or {}).get("recipient_id", 0))
        if uid not in self._host.world.users:
            return error(400, 50033, "Invalid Recipient(s)")
        cid = self._host.world.add_dm_channel(uid)
        return Reply(200, self._host.world.channels[cid])

    async def get_application(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``GET /oauth2/applications/@me``: what ``Client.login`` reads."""
        world = self._host.world
        app: JSON = {
            "id": str(self._host.ids.application),
            "name": "voicebot",
            "description": "Voice notes to text and back.",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": world.users[self._host.ids.owner],
            "verify_key": "0" * 64,
            "flags": (1 << 19) | (1 << 15),
            "team": None,
            "summary": "",
            "bot": world.users[self._host.ids.bot],
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": 1,
        }
        return Reply(200, app)

    async def get_gateway(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``GET /gateway`` and ``/gateway/bot`` (the latter with shards and session limits)."""
        body: JSON = {"url": self._host.gateway_url}
        if req.path.endswith("/bot"):
            limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
            body.update({"shards": 1, "session_start_limit": limit})
        return Reply(200, body)

    # --- application commands ----------------------------------------------------------------

    def _command_scope(self, m: re.Match[str]) -> tuple[int | None, Reply | None]:
        if int(m["app"]) != self._host.ids.application:
            return None, error(404, 10002, "Unknown Application")
        guild = int(m["guild"]) if m["guild"] else None
        if guild is not None and guild != self._host.ids.guild:
            return None, error(403, 50001, "Missing Access")
        return guild, None

    def _store_command(self, guild: int | None, body: JSON, previous: list[JSON]) -> JSON:
        same = [
            c for c in previous if c["name"] == body["name"] and c["type"] == body.get("type", 1)
        ]
        cmd: JSON = {
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            "integration_types": [0],
            "contexts": None,
            **body,
        }
        cmd.update({"type": body.get("type", 1), "application_id": str(self._host.ids.application)})
        cmd["id"] = same[0]["id"] if same else str(self._host.world.snowflake())
        cmd["version"] = str(self._host.world.snowflake())
        if guild is not None:
            cmd["guild_id"] = str(guild)
        return cmd

    async def get_commands(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``GET .../commands``: the last synced list."""
        guild, problem = self._command_scope(m)
        return problem or Reply(200, self._host.commands.get(guild, []))

    async def put_commands(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``PUT .../commands`` (``tree.sync``): replace the list, echo it back with ids."""
        guild, problem = self._command_scope(m)
        if problem:
            return problem
        previous = self._host.commands.get(guild, [])
        stored = [self._store_command(guild, body, previous) for body in req.json or []]
        self._host.commands[guild] = stored
        return Reply(200, stored)

    async def post_command(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``POST .../commands``: create or overwrite one command."""
        guild, problem = self._command_scope(m)
        if problem:
            return problem
        previous = self._host.commands.setdefault(guild, [])
        cmd = self._store_command(guild, req.json or {}, previous)
        previous[:] = [c for c in previous if c["id"] != cmd["id"]] + [cmd]
        return Reply(201, cmd)

    # --- channels and messages -----------------------------------------------------------------

    async def get_channel(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``GET /channels/{id}``."""
        channel = self._host.world.channels.get(int(m["channel"]))
        return Reply(200, channel) if channel else UNKNOWN_CHANNEL

    async def typing(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``POST /channels/{id}/typing``: 204."""
        return Reply(204) if int(m["channel"]) in self._host.world.channels else UNKNOWN_CHANNEL

    async def list_messages(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``GET /channels/{id}/messages``: newest first, ``limit`` honoured."""
        limit = int(req.query.get("limit", "50"))
        found = self._host.channel_messages(int(m["channel"]))
        return Reply(200, list(reversed(found))[:limit])

    async def create_message(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``POST /channels/{id}/messages``: JSON, or multipart ``payload_json`` + ``files[n]``."""
        channel_id = int(m["channel"])
        if channel_id not in self._host.world.channels:
            return UNKNOWN_CHANNEL
        composed = self.messages.compose(req, req.json or {}, channel_id)
        if isinstance(composed, Reply):
            return composed
        reference = ((req.json or {}).get("message_reference") or {}).get("message_id")
        message = self._host.world.new_message(
            channel_id,
            self._host.ids.bot,
            content=composed.content,
            attachments=composed.attachments,
            flags=composed.flags,
            reference_id=int(reference) if reference else None,
            **composed.extra,
        )
        await self._host.echo("MESSAGE_CREATE", message)
        return Reply(200, message)

    def _find(self, m: re.Match[str]) -> JSON | None:
        message = self._host.world.messages.get(int(m["message"]))
        if message is None or message["channel_id"] != m["channel"]:
            return None
        return message

    async def get_message(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``GET /channels/{id}/messages/{mid}``."""
        message = self._find(m)
        return Reply(200, message) if message else UNKNOWN_MESSAGE

    async def edit_message(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``PATCH /channels/{id}/messages/{mid}``."""
        message = self._find(m)
        if message is None:
            return UNKNOWN_MESSAGE
        problem = self.messages.edit(req, req.json or {}, message)
        if problem:
            return problem
        await self._host.echo("MESSAGE_UPDATE", message)
        return Reply(200, message)

    async def delete_message(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``DELETE /channels/{id}/messages/{mid}``: 204."""
        message = self._find(m)
        if message is None:
            return UNKNOWN_MESSAGE
        await self._host.forget_message(message)
        return Reply(204)

    async def react(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``PUT .../reactions/{emoji}/@me``: 204 (recorded only)."""
        return Reply(204) if self._find(m) else UNKNOWN_MESSAGE
