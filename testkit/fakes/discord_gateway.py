"""Fake Discord gateway: HELLO, heartbeats, IDENTIFY/RESUME, READY, GUILD_CREATE and dispatches."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from testkit.fakes.discord_world import (
    FLAG_EPHEMERAL,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    JSON,
    PRIVILEGED_INTENTS,
    FakeWorld,
)

_LOGGER = logging.getLogger(__name__)

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME = 0, 1, 2, 6
OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 7, 8, 9, 10, 11


@dataclass(slots=True)
class GatewaySession:
    """One identified gateway session (survives a RESUME onto a new websocket)."""

    session_id: str
    intents: int
    identify: JSON
    ws: web.WebSocketResponse | None
    seq: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: JSON) -> bool:
        """Send one text frame; False when the websocket is gone."""
        ws = self.ws
        if ws is None or ws.closed:
            return False
        async with self.lock:
            await ws.send_str(json.dumps(payload))
        return True

    async def dispatch(self, event: str, data: Any) -> bool:
        """Send a DISPATCH (op 0) with the next sequence number."""
        self.seq += 1
        return await self.send({"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data})


class FakeGateway:
    """Websocket endpoint plus the sessions the fake dispatches events to."""

    def __init__(
        self,
        world: FakeWorld,
        token: str,
        gateway_url: Callable[[], str],
        notify: Callable[[], Awaitable[None]],
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        self._world = world
        self._token = token
        self._gateway_url = gateway_url
        self._notify = notify
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.allowed_privileged_intents = PRIVILEGED_INTENTS
        self.sessions: dict[str, GatewaySession] = {}
        self.received: list[JSON] = []
        self.connect_queries: list[dict[str, str]] = []
        self._sockets: set[web.WebSocketResponse] = set()

    @property
    def live_sessions(self) -> list[GatewaySession]:
        """Sessions with an open websocket."""
        return [s for s in self.sessions.values() if s.ws is not None and not s.ws.closed]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The ``/gateway`` websocket handler."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.connect_queries.append(dict(request.query))
        await self._notify()
        hello = {"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}
        await ws.send_str(json.dumps({**hello, "s": None, "t": None}))
        session: GatewaySession | None = None
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                payload = json.loads(msg.data)
                self.received.append(payload)
                session = await self._on_payload(ws, session, payload)
                await self._notify()
        finally:
            self._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
            await self._notify()
        return ws

    async def _on_payload(
        self, ws: web.WebSocketResponse, session: GatewaySession | None, payload: JSON
    ) -> GatewaySession | None:
        op, data = payload.get("op"), payload.get("d") or {}
        if op == OP_HEARTBEAT:
            await ws.send_str(json.dumps({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None}))
        elif op == OP_IDENTIFY:
            return await self._identify(ws, data)
        elif op == OP_RESUME:
            return await self._resume(ws, data)
        elif op == OP_REQUEST_MEMBERS and session is not None:
            await session.dispatch("GUILD_MEMBERS_CHUNK", self._members_chunk(data))
        return session

    async def _identify(self, ws: web.WebSocketResponse, data: JSON) -> GatewaySession | None:
        if data.get("token") != self._token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        session = GatewaySession(secrets.token_hex(16), intents, data, ws)
        self.sessions[session.session_id] = session
        await session.dispatch("READY", self._ready(session))
        await session.dispatch("GUILD_CREATE", self._world.guild_payload())
        return session

    async def _resume(self, ws: web.WebSocketResponse, data: JSON) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self._token:
            await ws.send_str(
                json.dumps({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            )
            return None
        session.ws = ws
        await session.dispatch("RESUMED", {})
        return session

    def _ready(self, session: GatewaySession) -> JSON:
        bot = dict(self._world.users[self._world.ids.bot])
        bot.update({"verified": True, "mfa_enabled": False, "flags": 0, "email": None})
        ready: JSON = {
            "v": 10,
            "user": bot,
            "guilds": [{"id": str(self._world.ids.guild), "unavailable": True}],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self._gateway_url(),
            "application": {"id": str(self._world.ids.application), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
        }
        if "shard" in session.identify:
            ready["shard"] = session.identify["shard"]
        return ready

    def _members_chunk(self, data: JSON) -> JSON:
        world = self._world
        ids = [int(u) for u in data.get("user_ids") or world.member_roles]
        members = [world.member_payload(u) for u in ids if u in world.member_roles]
        chunk: JSON = {"guild_id": str(world.ids.guild), "members": members}
        chunk.update({"chunk_index": 0, "chunk_count": 1, "not_found": []})
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        return chunk

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send ``event`` to every live session; returns how many received it."""
        sent = 0
        for session in self.live_sessions:
            sent += await session.dispatch(event, data)
        return sent

    async def dispatch_message(self, event: str, message: JSON) -> int:
        """Send MESSAGE_CREATE/UPDATE honouring each session's intents like Discord does.

        Guild messages need GUILD_MESSAGES, DMs need DIRECT_MESSAGES; without MESSAGE_CONTENT a
        guild message from someone else that does not mention the bot arrives with empty
        content, attachments, embeds and components.
        """
        if message.get("flags", 0) & FLAG_EPHEMERAL:
            return 0
        if self._world.bot_absent(int(message["channel_id"])):
            return 0  # a server the bot is not in sends it nothing
        in_guild = "guild_id" in message
        needed = INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES
        payload = self._world.gateway_message(message)
        sent = 0
        for session in self.live_sessions:
            if not session.intents & needed:
                _LOGGER.warning("fake gateway: %s not delivered, intent %s missing", event, needed)
                continue
            sent += await session.dispatch(event, self._content_filtered(session, payload))
        return sent

    def _content_filtered(self, session: GatewaySession, message: JSON) -> JSON:
        bot_id = str(self._world.ids.bot)
        mentioned = any(u["id"] == bot_id for u in message.get("mentions", []))
        if (
            session.intents & INTENT_MESSAGE_CONTENT
            or "guild_id" not in message
            or message["author"]["id"] == bot_id
            or mentioned
        ):
            return message
        stripped = dict(message, content="", attachments=[], embeds=[], components=[])
        stripped.pop("poll", None)
        return stripped

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a raw non-dispatch opcode (e.g. 7 RECONNECT, 9 INVALID_SESSION) to every session."""
        for session in self.live_sessions:
            await session.send({"op": op, "d": data, "s": None, "t": None})

    async def drop(self, code: int = 4000) -> None:
        """Close every websocket with ``code`` (4000 lets the client RESUME)."""
        for ws in list(self._sockets):
            await ws.close(code=code, message=b"fake gateway drop")

    async def close(self) -> None:
        """Close every websocket (used on shutdown)."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
