"""Fake Discord (REST + gateway on 127.0.0.1) that the real discord.py talks to in tests.

Usage::

    async with FakeDiscord() as dc:
        discord.http.Route.BASE = dc.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(dc.gateway_url)
        await client.login(dc.token); task = asyncio.create_task(client.connect())
        await client.wait_until_ready()
        msg = await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, ogg, 2.5)
        req = await dc.wait_for_request("POST", r"/channels/\\d+/messages")

Module map: ``discord_world`` (ids, users, guild, channels, messages, payload builders),
``discord_gateway`` (websocket), ``discord_rest`` (bot-token routes and message rules),
``discord_interactions`` (INTERACTION_CREATE, callbacks, webhooks), ``discord_http``
(recording, replies, faults).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from testkit.fakes.discord_gateway import FakeGateway
from testkit.fakes.discord_http import (
    JSON,
    UNAUTHORIZED,
    UNKNOWN_ROUTE,
    Fault,
    RecordedRequest,
    Reply,
    error,
    read_request,
    to_response,
)
from testkit.fakes.discord_interactions import InteractionRecord, Interactions, slash_data
from testkit.fakes.discord_rest import RestRoutes, Route
from testkit.fakes.discord_world import FLAG_VOICE_MESSAGE, FakeIds, FakeWorld, make_waveform

__all__ = ["FakeDiscord", "FakeIds", "InteractionRecord", "RecordedRequest", "make_waveform"]

_T = TypeVar("_T")
_API = re.compile(r"/api/v\d+(/.*)")
MISSING_ACCESS = error(403, 50001, "Missing Access")
_DOWNLOAD = re.compile(r"/(?:media/)?attachments/\d+/(?P<id>\d+)/[^/]+")


class FakeDiscord:
    """Discord REST API + gateway for one bot, one guild, a thread and a DM channel.

    State worth asserting on: ``requests`` (every request, in order), ``unknown_requests``,
    ``messages`` (id -> Message payload, current state), ``interactions`` (id ->
    InteractionRecord), ``commands`` (guild id or None -> synced commands), ``downloads``
    (attachment id -> count), ``gateway.received`` / ``identify_payloads``.

    Switches: ``refuse_voice_messages`` (403 50173 on voice sends), ``upload_limit`` (bytes; 413
    40005 above it, also sent as ``attachment_size_limit``), ``echo_bot_messages`` (dispatch the
    bot's own messages back like Discord), ``bot_permissions`` (``app_permissions``),
    ``gateway.allowed_privileged_intents`` (IDENTIFY with others is closed with 4014).
    """

    def __init__(
        self,
        token: str = "fake-discord-token",
        *,
        ids: FakeIds | None = None,
        upload_limit: int = 10 * 1024 * 1024,
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        self.token = token
        self.ids = ids or FakeIds()
        self.world = FakeWorld(self.ids)
        self.upload_limit = upload_limit
        self.refuse_voice_messages = False
        self.echo_bot_messages = True
        self.bot_permissions = self.world.permissions_of(self.ids.bot)
        self.requests: list[RecordedRequest] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.downloads: Counter[int] = Counter()
        self.commands: dict[int | None, list[JSON]] = {}
        self.port = 0
        self._faults: list[Fault] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.gateway = FakeGateway(
            self.world, token, lambda: self.gateway_url, self._notify, heartbeat_interval_ms
        )
        self.rest = RestRoutes(self)
        self._interactions = Interactions(self)
        self._routes: list[Route] = self.rest.routes() + self._interactions.routes()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 with an OS-chosen port."""
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close gateway sockets, then the server."""
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (attachments are served below it)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """Value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (also READY's ``resume_gateway_url``)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- HTTP ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        api = _API.fullmatch(request.path)
        req = await read_request(request, api.group(1) if api else request.path)
        answer = await self._answer(req, is_api=api is not None)
        if isinstance(answer, web.Response):
            req.status = answer.status
        else:
            req.status, req.response = answer.status, answer.body
        self.requests.append(req)
        await self._notify()
        return answer if isinstance(answer, web.Response) else to_response(answer)

    async def _answer(self, req: RecordedRequest, *, is_api: bool) -> Reply | web.Response:
        route, match, wrong_method = None, None, False
        for candidate in self._routes if is_api else []:
            found = candidate.pattern.fullmatch(req.path)
            if found and candidate.method == req.method:
                route, match = candidate, found
                break
            wrong_method = wrong_method or found is not None
        if (
            route is not None
            and route.bot_auth
            and req.headers.get("Authorization") != f"Bot {self.token}"
        ):
            return UNAUTHORIZED
        for fault in self._faults:
            if fault.matches(req):
                return fault.reply()
        if route is not None and route.bot_auth and self._elsewhere(match):
            return MISSING_ACCESS
        if route is not None and match is not None:
            return await route.handler(req, match)
        if (download := _DOWNLOAD.fullmatch(req.path)) and req.method == "GET":
            return self._download(int(download["id"]))
        self.unknown_requests.append(req)
        return error(405, 0, "405: Method Not Allowed") if wrong_method else UNKNOWN_ROUTE

    def _elsewhere(self, match: re.Match[str] | None) -> bool:
        """A bot-token request on a channel of a server the bot is not in."""
        channel = match.groupdict().get("channel") if match is not None else None
        return channel is not None and self.world.bot_absent(int(channel))

    def _download(self, attachment_id: int) -> Reply | web.Response:
        stored = self.world.files.get(attachment_id)
        if stored is None:
            return error(404, 0, "404: Not Found")
        self.downloads[attachment_id] += 1
        return web.Response(body=stored[0], content_type=stored[1])

    # --- recording and waiting ----------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], _T | None], timeout: float = 10.0) -> _T:
        """Wait until ``predicate()`` is truthy (re-checked on every request/gateway frame).

        Returns:
            The truthy value.

        Raises:
            TimeoutError: after ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout), self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value
        except TimeoutError:
            seen = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
            raise TimeoutError(
                f"fake discord: condition not met in {timeout}s; last: {seen}"
            ) from None

    def find_requests(
        self, method: str = "*", path: str = ".*", *, since: int = 0
    ) -> list[RecordedRequest]:
        """Requests from index ``since`` with ``method`` whose path fully matches regex ``path``."""
        pattern = re.compile(path)
        found = self.requests[since:]
        return [r for r in found if method in ("*", r.method) and pattern.fullmatch(r.path)]

    async def wait_for_request(
        self,
        method: str,
        path: str,
        *,
        since: int = 0,
        where: Callable[[RecordedRequest], bool] | None = None,
        timeout: float = 10.0,
    ) -> RecordedRequest:
        """Wait for the first request from index ``since`` matching ``method``, regex ``path``
        (full match, relative to the API base) and ``where``."""

        def first() -> RecordedRequest | None:
            found = [
                r
                for r in self.find_requests(method, path, since=since)
                if where is None or where(r)
            ]
            return found[0] if found else None

        return await self.wait_for(first, timeout)

    @property
    def identify_payloads(self) -> list[JSON]:
        """The ``d`` of every IDENTIFY the gateway received (intents, properties, ...)."""
        return [p["d"] for p in self.gateway.received if p.get("op") == 2]

    @property
    def messages(self) -> dict[int, JSON]:
        """Every live message by id (user and bot messages, interaction responses)."""
        return self.world.messages

    @property
    def interactions(self) -> dict[int, InteractionRecord]:
        """Every interaction the fake dispatched, by id."""
        return self._interactions.records

    def channel_messages(self, channel_id: int) -> list[JSON]:
        """Live messages of a channel, oldest first."""
        return [m for m in self.world.messages.values() if m["channel_id"] == str(channel_id)]

    def bot_messages(self, channel_id: int | None = None) -> list[JSON]:
        """Live messages authored by the bot (optionally in one channel), oldest first."""
        bot = str(self.ids.bot)
        found = [m for m in self.world.messages.values() if m["author"]["id"] == bot]
        return [m for m in found if channel_id is None or m["channel_id"] == str(channel_id)]

    # --- faults -------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int,
        body: Any = None,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> Fault:
        """Answer matching requests (``method`` or ``"*"``, regex searched in the path) with
        ``status``/``body`` ``times`` times (None: until ``clear_faults``). A 429 gets Discord's
        body and ``Retry-After``/``X-RateLimit-*``/``Via`` headers (``retry_after`` seconds,
        default 0.05). ``when`` narrows by request, e.g. ``lambda r: r.json["flags"] & 8192``.
        """
        if status != 429 and body is None:
            body = {"message": f"{status}: fake failure", "code": 0}
        fault = Fault(method, re.compile(path_pattern), status, body, times, retry_after, when)
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def expire_token(self, token: str) -> None:
        """Make callback/webhook calls with ``token`` answer 401 50027 (Discord after 15 min)."""
        self._interactions.expired_tokens.add(token)

    # --- gateway dispatch helpers -------------------------------------------------------------

    async def _connected(self) -> None:
        await self.wait_for(lambda: self.gateway.live_sessions)

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send a raw DISPATCH to every connected client (waits for one to be identified)."""
        await self._connected()
        return await self.gateway.dispatch(event, data)

    async def echo(self, event: str, message: JSON) -> None:
        """Dispatch the bot's own message event back to it (as Discord does), if enabled."""
        if self.echo_bot_messages:
            await self.gateway.dispatch_message(event, message)

    async def forget_message(self, message: JSON) -> None:
        """Delete a message and dispatch MESSAGE_DELETE (if echo is on and it was not ephemeral)."""
        self.world.messages.pop(int(message["id"]), None)
        self.world.deleted_messages[int(message["id"])] = message
        if self.echo_bot_messages and not message.get("flags", 0) & 64:
            event: JSON = {k: message[k] for k in ("id", "channel_id", "guild_id") if k in message}
            await self.gateway.dispatch("MESSAGE_DELETE", event)

    def add_attachment(
        self,
        data: bytes,
        filename: str = "voice-message.ogg",
        content_type: str = "audio/ogg",
        *,
        channel_id: int | None = None,
        duration_secs: float | None = None,
        waveform: str | None = None,
        description: str | None = None,
    ) -> JSON:
        """Store ``data`` and return an Attachment payload whose ``url``/``proxy_url`` serve it."""
        return self.world.add_file(
            data,
            filename,
            content_type,
            self.base_url,
            channel_id or self.ids.text_channel,
            duration_secs=duration_secs,
            waveform=waveform,
            description=description,
        )

    async def send_message(
        self,
        channel_id: int | None = None,
        author_id: int | None = None,
        content: str = "",
        attachments: Sequence[JSON] = (),
        flags: int = 0,
        reference: int | JSON | None = None,
        *,
        mentions: Sequence[int] = (),
    ) -> JSON:
        """Dispatch MESSAGE_CREATE from a user (default: ``member`` in ``text_channel``).

        Returns the full message; what the client receives follows its intents (see
        FakeGateway.dispatch_message). ``reference`` (id or message) makes it a reply.
        """
        ref = int(reference["id"]) if isinstance(reference, Mapping) else reference
        message = self.world.new_message(
            channel_id or self.ids.text_channel,
            author_id or self.ids.member,
            content=content,
            attachments=attachments,
            flags=flags,
            mentions=mentions,
            reference_id=ref,
        )
        await self._connected()
        await self.gateway.dispatch_message("MESSAGE_CREATE", message)
        return message

    async def send_voice_message(
        self,
        channel_id: int | None,
        author_id: int | None,
        data: bytes,
        duration_secs: float,
        *,
        filename: str = "voice-message.ogg",
        waveform: str | None = None,
    ) -> JSON:
        """Dispatch a voice message: flags 8192, one ``audio/ogg`` attachment with metadata."""
        attachment = self.add_attachment(
            data,
            filename,
            channel_id=channel_id,
            duration_secs=duration_secs,
            waveform=waveform or make_waveform(),
        )
        return await self.send_message(
            channel_id, author_id, attachments=[attachment], flags=FLAG_VOICE_MESSAGE
        )

    async def send_slash(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        channel_id: int | None = None,
        user_id: int | None = None,
        *,
        guild: bool = True,
        command_guild: bool | None = None,
        user_install: bool = False,
    ) -> JSON:
        """Dispatch INTERACTION_CREATE for a CHAT_INPUT command and return its payload.

        ``options``: ``{name: value}`` (str/int/bool/float, or an attachment dict from
        ``add_attachment``) or raw option dicts. Without ``channel_id`` it is used in
        ``text_channel`` (``guild=True``) or in the user's DM. ``data.id``/``data.guild_id``
        come from what the bot synced; ``command_guild`` forces guild (True) or global (False);
        ``user_install``: used through the app installed to the user (always so in
        ``foreign_channel``, a server the bot is not in).
        """
        user_id = user_id or self.ids.member
        if channel_id is None:
            channel_id = self.ids.text_channel if guild else self.world.add_dm_channel(user_id)
        data = {"name": name, "type": 1, **slash_data(options or {})}
        record = self._interactions.create(
            data, channel_id, user_id, command_guild, user_install=user_install
        )
        await self.dispatch("INTERACTION_CREATE", record.payload)
        return record.payload

    async def send_autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        channel_id: int | None = None,
        user_id: int | None = None,
    ) -> JSON:
        """Dispatch an APPLICATION_COMMAND_AUTOCOMPLETE interaction (``type`` 4): the user is
        typing option ``focused`` (``"focused": true``); the bot answers with callback type 8,
        ``data.choices`` (see the interaction's ``callbacks``)."""
        data = {"name": name, "type": 1, **slash_data(options)}
        for option in data.get("options", []):
            if option["name"] == focused:
                option["focused"] = True
        record = self._interactions.create(
            data, channel_id or self.ids.text_channel, user_id or self.ids.member
        )
        record.payload["type"] = 4
        await self.dispatch("INTERACTION_CREATE", record.payload)
        return record.payload

    async def send_message_command(
        self,
        name: str,
        target_message: int | JSON,
        channel_id: int | None = None,
        user_id: int | None = None,
        *,
        command_guild: bool | None = None,
        user_install: bool = False,
    ) -> JSON:
        """Dispatch a MESSAGE context-menu interaction (``data.type`` 3, ``target_id``,
        ``resolved.messages``) on a stored message; returns the interaction payload
        (``user_install`` as in :meth:`send_slash`)."""
        mid = int(target_message["id"]) if isinstance(target_message, Mapping) else target_message
        message = self.world.messages[mid]
        channel_id = channel_id or int(message["channel_id"])
        data: JSON = {"name": name, "type": 3, "target_id": str(mid)}
        data["resolved"] = {"messages": {str(mid): message}}
        record = self._interactions.create(
            data, channel_id, user_id or self.ids.member, command_guild, user_install=user_install
        )
        await self.dispatch("INTERACTION_CREATE", record.payload)
        return record.payload

    async def press_button(
        self, message: int | JSON, custom_id: str, user_id: int | None = None
    ) -> JSON:
        """Dispatch a MESSAGE_COMPONENT interaction: ``user_id`` clicks the button
        ``custom_id`` on a stored message; returns the interaction payload."""
        mid = int(message["id"]) if isinstance(message, Mapping) else message
        record = self._interactions.create_component(
            self.world.messages[mid], custom_id, user_id or self.ids.member
        )
        await self.dispatch("INTERACTION_CREATE", record.payload)
        return record.payload

    def interaction(self, interaction: int | JSON) -> InteractionRecord:
        """The record (callbacks, original response, follow-ups) of an interaction."""
        iid = int(interaction["id"]) if isinstance(interaction, Mapping) else interaction
        return self._interactions.records[iid]

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects and RESUMEs."""
        await self.gateway.send_op(7)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close the client's websocket with ``code`` (4000: resumable)."""
        await self.gateway.drop(code)
