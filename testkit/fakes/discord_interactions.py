"""Interactions in the fake Discord: INTERACTION_CREATE payloads, callbacks and webhook routes."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from testkit.fakes.discord_http import (
    INVALID_WEBHOOK_TOKEN,
    JSON,
    RecordedRequest,
    Reply,
    error,
)
from testkit.fakes.discord_rest import UNKNOWN_MESSAGE, Composed, Handler, Route
from testkit.fakes.discord_world import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MESSAGE_CHAT_INPUT_COMMAND,
    MESSAGE_CONTEXT_MENU_COMMAND,
    now_iso,
)

if TYPE_CHECKING:
    from testkit.fakes.discord import FakeDiscord

UNKNOWN_INTERACTION = error(404, 10062, "Unknown interaction")
UNKNOWN_WEBHOOK = error(404, 10015, "Unknown Webhook")
ALREADY_ACKNOWLEDGED = error(400, 40060, "Interaction has already been acknowledged.")

# Callback types that create or update a message the callback resource carries.
_MESSAGE_CALLBACKS = (4, 5, 7)


@dataclass(slots=True)
class InteractionRecord:
    """An interaction the fake dispatched and everything the bot did with it."""

    payload: JSON
    callbacks: list[JSON] = field(default_factory=list)
    original: JSON | None = None
    followups: list[JSON] = field(default_factory=list)

    @property
    def id(self) -> int:
        """The interaction id."""
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        """The interaction token (valid 15 minutes on Discord; see FakeDiscord.expire_token)."""
        return str(self.payload["token"])

    @property
    def acknowledged(self) -> bool:
        """Whether a callback was accepted."""
        return bool(self.callbacks)


def _option(name: str, value: Any) -> tuple[JSON, JSON | None]:
    """One CHAT_INPUT option from a Python value, plus its resolved attachment if any."""
    if isinstance(value, Mapping) and "filename" in value:
        return {"name": name, "type": 11, "value": str(value["id"])}, dict(value)
    if isinstance(value, bool):
        return {"name": name, "type": 5, "value": value}, None
    if isinstance(value, int):
        return {"name": name, "type": 4, "value": value}, None
    if isinstance(value, float):
        return {"name": name, "type": 10, "value": value}, None
    return {"name": name, "type": 3, "value": str(value)}, None


def slash_data(options: Mapping[str, Any] | Sequence[JSON]) -> JSON:
    """``data.options`` (+ ``resolved.attachments``) from ``{name: value}`` or raw option dicts.

    Values map to option types: str 3, int 4, bool 5, float 10, attachment dict 11.
    """
    if not isinstance(options, Mapping):
        return {"options": list(options)}
    data: JSON = {"options": []}
    for name, value in options.items():
        option, attachment = _option(name, value)
        data["options"].append(option)
        if attachment is not None:
            data.setdefault("resolved", {}).setdefault("attachments", {})[option["value"]] = (
                attachment
            )
    return data


class Interactions:
    """Builds INTERACTION_CREATE payloads and serves the callback + webhook routes."""

    def __init__(self, host: FakeDiscord) -> None:
        self._host = host
        self.records: dict[int, InteractionRecord] = {}
        self.expired_tokens: set[str] = set()

    # --- payloads ------------------------------------------------------------------------------

    def _command(self, name: str, ctype: int, in_guild: bool, force: bool | None) -> JSON:
        """``data.id``/``data.guild_id`` of a command, taken from what the bot synced."""
        guild = self._host.ids.guild
        found = [(g, c) for g, cmds in self._host.commands.items() for c in cmds]
        found = [(g, c) for g, c in found if c["name"] == name and c["type"] == ctype]
        found = [(g, c) for g, c in found if g is None or (in_guild and g == guild)]
        found.sort(key=lambda gc: gc[0] is None)  # guild commands shadow global ones
        data: JSON = {"id": found[0][1]["id"] if found else str(self._host.world.snowflake())}
        data.update({"name": name, "type": ctype})
        is_guild_cmd = bool(found and found[0][0] is not None) if force is None else force
        if is_guild_cmd:
            data["guild_id"] = str(guild)
        return data

    def _payload(
        self,
        itype: int,
        channel_id: int,
        user_id: int,
        *,
        locale: str,
        guild_locale: str,
        user_install: bool = False,
    ) -> JSON:
        """What every interaction of ``itype`` carries: ids, token, channel, locales, the
        invoking member (in a guild) or user (in a DM), ``context`` (0 guild, 1 the bot's DM)
        and ``authorizing_integration_owners`` ("0": the installing guild's id, "0" in the
        bot's DM; "1": the user who installed the app to their account)."""
        host, world = self._host, self._host.world
        in_guild = world.is_guild_channel(channel_id)
        absent = world.bot_absent(channel_id)  # only a user install reaches there
        channel = dict(world.channels[channel_id], permissions=str(world.permissions_of(user_id)))
        owners: JSON = {} if absent else {"0": channel.get("guild_id", "0")}
        if user_install or absent:
            owners["1"] = str(user_id)
        payload: JSON = {
            "id": str(world.snowflake()),
            "application_id": str(host.ids.application),
            "type": itype,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            "version": 1,
            "channel": channel,
            "channel_id": str(channel_id),
            "locale": locale,
            "app_permissions": str(host.bot_permissions),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": host.upload_limit,
            "context": 0 if in_guild else 1,
            "authorizing_integration_owners": owners,
        }
        if in_guild:
            guild = channel["guild_id"]
            payload["guild_id"] = guild
            payload["guild"] = {"id": guild, "locale": guild_locale, "features": []}
            payload["guild_locale"] = guild_locale
            payload["member"] = world.member_payload(user_id, perms=True)
        else:
            payload["user"] = world.users[user_id]
        return payload

    def _check_offered(self, data: JSON, payload: JSON) -> None:
        """Discord shows a user-installed app only the commands whose ``integration_types``
        hold 1 (USER_INSTALL) and whose ``contexts`` hold where it is used; the bot's own
        guild install does not count where the bot is not a member."""
        owners = payload["authorizing_integration_owners"]
        if "1" not in owners or "0" in owners:
            return
        for cmds in self._host.commands.values():
            for cmd in cmds:
                if cmd["name"] == data["name"] and cmd["type"] == data["type"]:
                    offered = 1 in (cmd.get("integration_types") or [0])
                    if offered and payload["context"] in (cmd.get("contexts") or [0, 1, 2]):
                        return
        raise AssertionError(f"{data['name']!r} is not offered to a user install here")

    def _remember(self, payload: JSON) -> InteractionRecord:
        record = InteractionRecord(payload)
        self.records[record.id] = record
        return record

    def create(
        self,
        data: JSON,
        channel_id: int,
        user_id: int,
        command_guild: bool | None = None,
        *,
        user_install: bool = False,
    ) -> InteractionRecord:
        """Build, remember and return an APPLICATION_COMMAND interaction (``user_install``:
        through the app installed to the user; always so where the bot is not a member)."""
        world = self._host.world
        in_guild = world.is_guild_channel(channel_id) and not world.bot_absent(channel_id)
        data = {**self._command(data["name"], data["type"], in_guild, command_guild), **data}
        locale = world.user_locales.get(user_id, "en-US")
        payload = self._payload(
            2,
            channel_id,
            user_id,
            locale=locale,
            guild_locale=world.guild_locale,
            user_install=user_install,
        )
        self._check_offered(data, payload)
        return self._remember({**payload, "data": data})

    def create_component(
        self, message: JSON, custom_id: str, user_id: int, component_type: int = 2
    ) -> InteractionRecord:
        """Build, remember and return a MESSAGE_COMPONENT interaction (type 3): a click on a
        component of ``message``. Per the docs ``data`` holds ``custom_id``/``component_type``
        and ``message`` the message the component is attached to."""
        channel_id = int(message["channel_id"])
        payload = self._payload(3, channel_id, user_id, locale="en-US", guild_locale="en-US")
        payload["data"] = {"custom_id": custom_id, "component_type": component_type}
        payload["message"] = self._host.world.gateway_message(message)
        metadata = message.get("interaction_metadata")
        if metadata:  # a click on an interaction's reply: the installs that authorized it
            payload["authorizing_integration_owners"] = metadata["authorizing_integration_owners"]
        return self._remember(payload)

    def _response_message(self, record: InteractionRecord, composed: Composed) -> JSON:
        payload = record.payload
        user = payload.get("member", {}).get("user") or payload["user"]
        data = payload["data"]
        metadata: JSON = {
            "id": payload["id"],
            "type": payload["type"],
            "user": user,
            "authorizing_integration_owners": payload["authorizing_integration_owners"],
        }
        if payload["type"] == 3:
            # A reply to a component click: a default message whose metadata names the message
            # that carried the component (message component interaction metadata).
            metadata["interacted_message_id"] = payload["message"]["id"]
            return self._new_message(record, composed, interaction_metadata=metadata)
        mtype = MESSAGE_CHAT_INPUT_COMMAND if data["type"] == 1 else MESSAGE_CONTEXT_MENU_COMMAND
        metadata.update(name=data["name"], command_type=data["type"])
        return self._new_message(
            record,
            composed,
            type=mtype,
            interaction_metadata=metadata,
            interaction={"id": payload["id"], "type": 2, "name": data["name"], "user": user},
        )

    def _new_message(self, record: InteractionRecord, composed: Composed, **fields: Any) -> JSON:
        """The bot's message answering ``record`` (sent through the interaction's webhook)."""
        host = self._host
        return host.world.new_message(
            int(record.payload["channel_id"]),
            host.ids.bot,
            content=composed.content,
            attachments=composed.attachments,
            flags=composed.flags,
            webhook_id=str(host.ids.application),
            application_id=str(host.ids.application),
            **fields,
            **composed.extra,
        )

    # --- routes --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """Callback and webhook routes (authenticated by the token in the path, not a header)."""
        hook = r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
        table: list[tuple[str, str, Handler]] = [
            ("POST", r"/interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", self.callback),
            ("POST", hook, self.followup),
            ("GET", hook + r"/messages/(?P<message>@original|\d+)", self.get_message),
            ("PATCH", hook + r"/messages/(?P<message>@original|\d+)", self.edit_message),
            ("DELETE", hook + r"/messages/(?P<message>@original|\d+)", self.delete_message),
        ]
        return [Route(m, re.compile(p), h, bot_auth=False) for m, p, h in table]

    async def callback(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``POST /interactions/{id}/{token}/callback``; answers the ``with_response`` shape."""
        if m["token"] in self.expired_tokens:
            return INVALID_WEBHOOK_TOKEN
        record = self.records.get(int(m["id"]))
        if record is None or record.token != m["token"]:
            return UNKNOWN_INTERACTION
        if record.acknowledged:
            return ALREADY_ACKNOWLEDGED
        body: JSON = req.json or {}
        rtype, data = int(body.get("type", 0)), body.get("data") or {}
        message, problem = await self._callback_message(req, record, rtype, data)
        if problem:
            return problem
        record.callbacks.append(body)
        if req.query.get("with_response") not in ("1", "true", "True"):
            return Reply(204)
        flags = message["flags"] if message else 0
        interaction: JSON = {"id": record.payload["id"], "type": record.payload["type"]}
        interaction["response_message_loading"] = bool(flags & FLAG_LOADING)
        interaction["response_message_ephemeral"] = bool(flags & FLAG_EPHEMERAL)
        if message:
            interaction["response_message_id"] = message["id"]
        resource: JSON = {"type": rtype}
        if message and rtype in _MESSAGE_CALLBACKS:
            resource["message"] = message
        return Reply(200, {"interaction": interaction, "resource": resource})

    async def _callback_message(
        self, req: RecordedRequest, record: InteractionRecord, rtype: int, data: JSON
    ) -> tuple[JSON | None, Reply | None]:
        channel_id = int(record.payload["channel_id"])
        if rtype == 4:
            composed = self._host.rest.messages.compose(req, data, channel_id)
            if isinstance(composed, Reply):
                return None, composed
        elif rtype == 5:
            composed = Composed(
                "", [], FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            )
        elif rtype == 7 and record.payload.get("message"):
            target = self._host.world.messages[int(record.payload["message"]["id"])]
            problem = self._host.rest.messages.edit(req, data, target)
            if not problem:
                await self._host.echo("MESSAGE_UPDATE", target)
            return target, problem
        else:
            return None, None
        message = self._response_message(record, composed)
        record.original = message
        await self._host.echo("MESSAGE_CREATE", message)
        return message, None

    def _resolve(self, m: re.Match[str]) -> InteractionRecord | Reply:
        if int(m["app"]) != self._host.ids.application:
            return UNKNOWN_WEBHOOK
        if m["token"] in self.expired_tokens:
            return INVALID_WEBHOOK_TOKEN
        for record in self.records.values():
            if record.token == m["token"]:
                return record if record.acknowledged else UNKNOWN_WEBHOOK
        return INVALID_WEBHOOK_TOKEN

    def _target(self, m: re.Match[str]) -> tuple[InteractionRecord | None, JSON | Reply]:
        record = self._resolve(m)
        if isinstance(record, Reply):
            return None, record
        if m["message"] == "@original":
            return record, record.original or UNKNOWN_MESSAGE
        for message in [record.original, *record.followups]:
            if message is not None and message["id"] == m["message"]:
                return record, message
        return record, UNKNOWN_MESSAGE

    async def followup(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``POST /webhooks/{app}/{token}``: a follow-up (the first one after a deferred
        "thinking" response replaces the loading message, as on Discord)."""
        record = self._resolve(m)
        if isinstance(record, Reply):
            return record
        channel_id = int(record.payload["channel_id"])
        composed = self._host.rest.messages.compose(req, req.json or {}, channel_id)
        if isinstance(composed, Reply):
            return composed
        original = record.original
        if original is not None and original["flags"] & FLAG_LOADING and not record.followups:
            # The deferred "thinking" message becomes this follow-up; it stays as ephemeral
            # as the defer was.
            original.update(composed.extra, content=composed.content, edited_timestamp=now_iso())
            original["attachments"] = composed.attachments
            original["flags"] = (original["flags"] & FLAG_EPHEMERAL) | composed.flags
            message = original
            await self._host.echo("MESSAGE_UPDATE", message)
        else:
            message = self._response_message(record, composed)
            await self._host.echo("MESSAGE_CREATE", message)
        record.followups.append(message)
        wait = req.query.get("wait") in ("1", "true", "True")
        return Reply(200, message) if wait else Reply(204)

    async def get_message(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``GET /webhooks/{app}/{token}/messages/{@original|id}``."""
        _, message = self._target(m)
        return message if isinstance(message, Reply) else Reply(200, message)

    async def edit_message(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``PATCH /webhooks/{app}/{token}/messages/{@original|id}``."""
        _, message = self._target(m)
        if isinstance(message, Reply):
            return message
        problem = self._host.rest.messages.edit(req, req.json or {}, message)
        if problem:
            return problem
        await self._host.echo("MESSAGE_UPDATE", message)
        return Reply(200, message)

    async def delete_message(self, req: RecordedRequest, m: re.Match[str]) -> Reply:
        """``DELETE /webhooks/{app}/{token}/messages/{@original|id}``: 204."""
        record, message = self._target(m)
        if isinstance(message, Reply) or record is None:
            return message if isinstance(message, Reply) else UNKNOWN_MESSAGE
        if record.original is message:
            record.original = None
        await self._host.forget_message(message)
        return Reply(204)
