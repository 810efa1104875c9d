"""Fake Telegram Bot API server (aiohttp on 127.0.0.1) that the real python-telegram-bot talks to.

Usage::

    async with FakeTelegram() as tg:
        app = (ApplicationBuilder().token(tg.token)
               .base_url(f"{tg.api_base}/bot").base_file_url(f"{tg.api_base}/file/bot").build())
        ...  # start the app, then inject user activity and assert on what the bot did
        tg.send_text(chat=42, user=42, text="/ping")
        call = await tg.wait_for("sendMessage")
        assert call.params["text"] == "pong" and call.chat_id == 42

Wire shapes follow https://core.telegram.org/bots/api: every answer is
``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}`` with HTTP status N.
PTB sends string parameters raw and everything else JSON-encoded, so non-string form fields are
decoded with ``json.loads`` (``chat_id`` "123" -> 123, ``reply_parameters`` -> dict).

Behaviour worth knowing (all mirrors real Telegram unless marked *lenient*):

* ``getUpdates`` is a real long poll: it holds up to ``timeout`` seconds, then answers ``[]``;
  ``offset`` confirms (forgets) older updates, a negative offset keeps only the last ``-offset``.
* Messages live in a per-chat store with ``message_id`` increasing per chat, so replies carry a
  ``reply_to_message`` (itself without a nested one, as Telegram documents).
* Errors modelled: text empty/too long (4096), caption too long (1024), reply target missing (unless
  ``allow_sending_without_reply``), edit of a missing/foreign message, "message is not modified",
  delete of a missing message, unknown ``file_id``, ``getFile`` of a file over 20 MB, blocked users
  (:meth:`FakeTelegram.block`), admins of a private chat, and injected faults
  (:meth:`FakeTelegram.fail`).
* *lenient*: chats the fake has never seen are created on first use (positive id = private chat,
  negative = supergroup) instead of "chat not found"; ``parse_mode`` markup is not rendered (the
  message text keeps the raw markup); unknown methods answer ``true`` and are logged and recorded.

Not thread-safe: inject activity from the event loop that runs the fake.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from aiohttp import web

_LOGGER = logging.getLogger(__name__)

JsonDict = dict[str, Any]

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
"""Bot API ``getFile`` refuses files above 20 MB ("Bad Request: file is too big")."""
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024

# Fields PTB sends raw even when they look like JSON ("123" as a text must stay a string).
_RAW_STRING_PARAMS = frozenset(
    {"text", "caption", "parse_mode", "action", "file_id", "callback_query_id", "title",
     "performer", "file_name", "description", "short_description", "name", "language_code",
     "voice", "audio", "document", "video_note", "video", "photo", "animation", "sticker",
     "thumbnail", "url", "inline_message_id", "business_connection_id", "message_effect_id",
     "emoji", "custom_title", "query", "secret_token", "guest_query_id"}
)  # fmt: skip

_KNOWN_METHODS = (
    "getMe", "getUpdates", "deleteWebhook", "setMyCommands", "getMyCommands", "sendMessage",
    "editMessageText", "deleteMessage", "sendChatAction", "sendVoice", "sendAudio",
    "sendDocument", "getFile", "getChat", "getChatMember", "getChatAdministrators",
    "answerCallbackQuery", "setWebhook", "getWebhookInfo", "logOut", "close",
    "answerGuestQuery", "sendMessageDraft",
)  # fmt: skip
_CANONICAL = {name.lower(): name for name in _KNOWN_METHODS}
_CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
     "upload_document", "choose_sticker", "find_location", "record_video_note",
     "upload_video_note"}
)  # fmt: skip
_READ_ONLY_CHAT_METHODS = frozenset({"getChat", "getChatMember", "getChatAdministrators"})

_ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
    "can_edit_stories", "can_delete_stories", "can_pin_messages", "can_manage_topics",
)  # fmt: skip
_RESTRICTED_RIGHTS = (
    "can_change_info", "can_invite_users", "can_pin_messages", "can_send_messages",
    "can_send_polls", "can_send_other_messages", "can_add_web_page_previews", "can_manage_topics",
    "can_send_audios", "can_send_documents", "can_send_photos", "can_send_videos",
    "can_send_video_notes", "can_send_voice_notes", "can_edit_tag",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Upload:
    """A file the bot uploaded in a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class Call:
    """One Bot API request as the fake saw and answered it.

    ``method`` is canonical camelCase for known methods ("sendVoice"), else as sent.
    ``params`` are decoded (ints, dicts, bools); ``files`` maps form field -> :class:`Upload`.
    ``status`` is the HTTP status answered; ``error`` the description when it failed.
    """

    method: str
    params: JsonDict
    files: dict[str, Upload] = field(default_factory=dict)
    status: int = 200
    result: Any = None
    error: str | None = None
    at: float = field(default_factory=time.monotonic)
    """When the fake received it (``time.monotonic``): edit budgets are counted on it."""

    @property
    def ok(self) -> bool:
        """Whether the fake answered ``ok: true``."""
        return self.status == 200

    @property
    def chat_id(self) -> Any:
        """The ``chat_id`` parameter (int for numeric ids), or None."""
        return self.params.get("chat_id")

    @property
    def text(self) -> str | None:
        """The ``text`` (or ``caption``) parameter, or None."""
        value = self.params.get("text", self.params.get("caption"))
        return value if isinstance(value, str) else None

    @property
    def message(self) -> JsonDict | None:
        """The Message object returned, if the result was one."""
        if isinstance(self.result, dict) and "message_id" in self.result:
            return self.result
        return None

    @property
    def upload(self) -> Upload | None:
        """The first uploaded file of this call, if any."""
        return next(iter(self.files.values()), None)

    def sent_document(self, suffix: str) -> bool:
        """Whether this call sent a document whose file name ends with ``suffix`` (".srt")."""
        upload = self.files.get("document")
        return upload is not None and (upload.filename or "").endswith(suffix)

    def button(self, prefix: str) -> str:
        """The callback data of the one inline button whose data starts with ``prefix``."""
        rows = self.params["reply_markup"]["inline_keyboard"]
        [data] = [
            b["callback_data"] for row in rows for b in row if b["callback_data"].startswith(prefix)
        ]
        return str(data)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file the fake knows: sent by a user (:meth:`FakeTelegram.add_file`) or by the bot."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_size: int
    file_path: str


class ApiError(Exception):
    """An error answer: HTTP status and ``error_code`` ``code``, with ``description``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


class _Signal:
    """Wakes every current waiter at once; a new generation starts after each notify."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for the next notify; False on timeout."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True


def _decode(name: str, value: str) -> Any:
    if name in _RAW_STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # e.g. chat_id "@channelname"


def _method_is(name: str) -> Callable[[Call], bool]:
    return lambda call: call.method.lower() == name.lower()


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _error_body(code: int, description: str, retry_after: int | None = None) -> JsonDict:
    body: JsonDict = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


class FakeTelegram:
    """A Bot API server for one bot. Start with ``async with`` (or :meth:`start`/:meth:`stop`).

    Attributes:
        calls: Every answered request in order, except successful ``getUpdates`` polls.
        downloads: How many file downloads were served (prove nothing was downloaded).
        downloaded: The ``file_id`` of each download served, in order.
        get_updates_count: How many ``getUpdates`` requests were answered.
        held_polls: How many ``getUpdates`` long polls are waiting right now.
        max_download_size: ``getFile`` refuses larger files, like Telegram's 20 MB cap.
    """

    def __init__(
        self,
        token: str = "123456:TEST-token",
        username: str = "voicebot_test_bot",
        *,
        first_name: str = "Voicebot Test",
        port: int = 0,
    ) -> None:
        """Create a stopped server; ``port`` 0 picks a free one (fix it to restart in place)."""
        self.token = token
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.bot_user: JsonDict = {
            "id": bot_id, "is_bot": True, "first_name": first_name, "username": username,
        }  # fmt: skip
        self.calls: list[Call] = []
        self.downloads = 0
        self.downloaded: list[str] = []
        self.get_updates_count = 0
        self.held_polls = 0
        self.max_download_size = MAX_DOWNLOAD_SIZE
        self._users: dict[int, JsonDict] = {}
        self._chats: dict[int, JsonDict] = {}
        self._messages: dict[int, dict[int, JsonDict]] = {}
        self._next_message_id: dict[int, itertools.count[int]] = {}
        self._updates: list[JsonDict] = []
        self._allowed_updates: set[str] | None = None
        self._update_ids = itertools.count(1)
        self._last_fetched = 0
        self._files: dict[str, StoredFile] = {}
        self._file_numbers = itertools.count(1)
        self._members: dict[tuple[int, int], str] = {}
        self._blocked: set[int] = set()
        self._failures: dict[str, deque[ApiError]] = {}
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        # Guest mode (Bot API 10.0): query id -> its answer (None until answered), and the
        # inline messages those answers posted, by inline_message_id.
        self.guest_answers: dict[str, JsonDict | None] = {}
        self.inline_messages: dict[str, JsonDict] = {}
        self._updates_signal = _Signal()
        self._calls_signal = _Signal()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._handlers = self._method_table()
        self._port = port

    # ------------------------------------------------------------------ lifecycle

    @property
    def api_base(self) -> str:
        """Base URL without ``/bot``: the bot appends ``/bot`` and ``/file/bot`` itself."""
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        # Telegram accepts 50 MB uploads; aiohttp's default body cap is 1 MB.
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_download)
        app.router.add_route("*", "/{tail:.*}", _not_found)
        self._closing = False
        # Held long polls are released by stop(), so a short grace period is plenty.
        self._runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Release every held ``getUpdates`` (answering ``[]``) and close the server."""
        self._closing = True
        self._updates_signal.notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def fail(
        self,
        method: str,
        error_code: int,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error instead of running it.

        Args:
            method: Bot API method name (case-insensitive), e.g. "sendVoice".
            error_code: HTTP status and ``error_code``: 429, 403, 400, 500...
            description: Defaults to "Too Many Requests: retry after N" for 429, else the
                status phrase ("Bad Request", "Forbidden", "Internal Server Error"...).
            retry_after: Sent as ``parameters.retry_after`` (PTB raises ``RetryAfter``).
            times: How many consecutive calls fail.
        """
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if error_code == 429
                else HTTPStatus(error_code).phrase
            )
        queue = self._failures.setdefault(method.lower(), deque())
        queue.extend(ApiError(error_code, description, retry_after) for _ in range(times))

    def block(self, user_id: int) -> None:
        """Make sends to this private chat fail with 403 "bot was blocked by the user"."""
        self._blocked.add(user_id)

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """Set a ``getChatMember`` status: creator/administrator/member/restricted/left/kicked."""
        self._chat(chat_id)
        self._user(user_id)
        self._members[(chat_id, user_id)] = status

    def add_user(
        self,
        user_id: int,
        first_name: str | None = None,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> JsonDict:
        """Register (or replace) a user; returns the User object."""
        user: JsonDict = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
        }
        for key, value in (
            ("last_name", last_name), ("username", username), ("language_code", language_code),
        ):  # fmt: skip
            if value is not None:
                user[key] = value
        self._users[user_id] = user
        self._chats.pop(user_id, None)  # the private chat mirrors the user's names
        return user

    def add_chat(
        self,
        chat_id: int,
        *,
        type: str | None = None,  # the Bot API's field name
        title: str | None = None,
        username: str | None = None,
    ) -> JsonDict:
        """Register a chat; positive ids are private chats, negative ones groups.

        Args:
            chat_id: The chat id (private chat id == user id).
            type: "private", "group" or "supergroup" (default by sign: private / supergroup).
            title: Group title (default "Group <id>").
            username: Public @username of a supergroup.
        """
        if chat_id > 0:
            user = self._user(chat_id)
            chat: JsonDict = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    chat[key] = user[key]
        else:
            chat = {
                "id": chat_id,
                "type": type or "supergroup",
                "title": title or f"Group {chat_id}",
            }
            if username:
                chat["username"] = username
        self._chats[chat_id] = chat
        return chat

    def add_file(
        self, data: bytes, *, file_size: int | None = None, file_path: str | None = None
    ) -> tuple[str, str]:
        """Store a file a user sent; ``file_size`` may exceed ``len(data)`` to fake a huge file.

        Returns:
            ``(file_id, file_unique_id)``.
        """
        stored = self._store_file(data, file_size, file_path or "documents/file_{n}")
        return stored.file_id, stored.file_unique_id

    def file(self, file_id: str) -> StoredFile:
        """A stored file (user's or bot's) by ``file_id``."""
        return self._files[file_id]

    def commands(self, scope_type: str = "default", language_code: str = "") -> list[JsonDict]:
        """The BotCommand list last set with ``setMyCommands`` for that scope and language."""
        return list(self._commands.get((scope_type, language_code), []))

    # ------------------------------------------------------------------ injecting user activity

    def send_text(self, chat: int, user: int, text: str, reply_to: int | None = None) -> JsonDict:
        """Inject a text message; ``/cmd`` and ``/cmd@username args`` get a bot_command entity."""
        content: JsonDict = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
            ]
        return self._user_message(chat, user, reply_to, content)

    def send_voice(
        self,
        chat: int,
        user: int,
        data: bytes,
        *,
        duration: int = 1,
        mime_type: str = "audio/ogg",
        file_size: int | None = None,
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> JsonDict:
        """Inject a voice note (the file is stored for ``getFile`` and download)."""
        stored = self._store_file(data, file_size, "voice/file_{n}.oga")
        voice = self._file_object(stored, duration=duration, mime_type=mime_type)
        return self._user_message(chat, user, reply_to, {"voice": voice}, caption)

    def send_audio(
        self,
        chat: int,
        user: int,
        data: bytes,
        *,
        duration: int = 1,
        mime_type: str = "audio/mpeg",
        file_name: str | None = "audio.mp3",
        title: str | None = None,
        performer: str | None = None,
        file_size: int | None = None,
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> JsonDict:
        """Inject an audio file (music player attachment)."""
        stored = self._store_file(data, file_size, "music/file_{n}.mp3")
        audio = self._file_object(
            stored, duration=duration, mime_type=mime_type, file_name=file_name, title=title,
            performer=performer,
        )  # fmt: skip
        return self._user_message(chat, user, reply_to, {"audio": audio}, caption)

    def send_video_note(
        self,
        chat: int,
        user: int,
        data: bytes,
        *,
        duration: int = 1,
        length: int = 240,
        file_size: int | None = None,
        reply_to: int | None = None,
    ) -> JsonDict:
        """Inject a round video note (VideoNote has no mime_type in the Bot API)."""
        stored = self._store_file(data, file_size, "video_notes/file_{n}.mp4")
        note = self._file_object(stored, duration=duration, length=length)
        return self._user_message(chat, user, reply_to, {"video_note": note})

    def send_document(
        self,
        chat: int,
        user: int,
        data: bytes,
        *,
        mime_type: str = "application/octet-stream",
        file_name: str = "file.bin",
        file_size: int | None = None,
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> JsonDict:
        """Inject a document (any file sent "as file")."""
        stored = self._store_file(data, file_size, "documents/file_{n}")
        doc = self._file_object(stored, mime_type=mime_type, file_name=file_name)
        return self._user_message(chat, user, reply_to, {"document": doc}, caption)

    def post_unseen_voice(
        self, chat: int, user: int, data: bytes, *, duration: int = 1
    ) -> JsonDict:
        """A voice note posted in a chat the bot is not a member of: stored, no update sent."""
        stored = self._store_file(data, None, "voice/file_{n}.oga")
        voice = self._file_object(stored, duration=duration, mime_type="audio/ogg")
        return self._new_message(self._chat(chat), self._user(user), None, {"voice": voice})

    def send_guest(
        self, chat: int, user: int, text: str | None = None, *, reply_to: int | None = None
    ) -> JsonDict:
        """Inject a ``guest_message`` (Bot API 10.0): ``user`` calls the bot by @username in
        ``chat``, which the bot need not be a member of; ``reply_to`` is the message the call
        replies to, carried as ``reply_to_message``. Returns the message (``guest_query_id``)."""
        mention = f"@{self.bot_user['username']}"
        body = text if text is not None else mention
        content: JsonDict = {"text": body, "guest_query_id": secrets.token_hex(8)}
        at = body.find(mention)
        if at >= 0:
            offset = _utf16_len(body[:at])
            content["entities"] = [
                {"type": "mention", "offset": offset, "length": _utf16_len(mention)}
            ]
        target = None if reply_to is None else self._message(chat, reply_to)
        message = self._new_message(self._chat(chat), self._user(user), target, content)
        self.guest_answers[content["guest_query_id"]] = None
        self._push_update({"guest_message": message})
        return message

    def press_button(self, chat: int, user: int, message_id: int, data: str) -> JsonDict:
        """Inject a callback query for an inline button under a stored message."""
        query: JsonDict = {
            "id": secrets.token_hex(8),
            "from": self._user(user),
            "message": self._message(chat, message_id),
            "chat_instance": str(abs(chat)),
            "data": data,
        }
        self._push_update({"callback_query": query})
        return query

    # ------------------------------------------------------------------ inspecting

    def messages(self, chat_id: int) -> list[JsonDict]:
        """Every message currently in the chat (users' and bot's), oldest first, after edits."""
        return list(self._messages.get(chat_id, {}).values())

    def sent(self, chat_id: int, *, actions: bool = False) -> list[Call]:
        """Successful bot calls that changed the chat (send*/edit*/delete*), in order.

        Args:
            chat_id: The chat.
            actions: Also include ``sendChatAction`` ("typing...", "record_voice") calls.
        """
        return [
            call
            for call in self.calls
            if call.ok
            and call.chat_id == chat_id
            and call.method not in _READ_ONLY_CHAT_METHODS
            and (actions or call.method != "sendChatAction")
        ]

    def pending_updates(self) -> list[JsonDict]:
        """Updates not yet confirmed by a later ``getUpdates`` offset."""
        return list(self._updates)

    async def wait_for(
        self,
        match: str | Callable[[Call], bool],
        timeout: float = 10.0,
        *,
        start: int = 0,
    ) -> Call:
        """Return the first recorded call (from index ``start``) that matches, waiting if needed.

        Args:
            match: A method name (case-insensitive) or a predicate on :class:`Call`.
            timeout: Seconds to wait before raising ``TimeoutError``.
            start: Skip ``calls[:start]``; pass ``len(tg.calls)`` taken earlier to see only
                newer calls.
        """
        predicate: Callable[[Call], bool] = match if callable(match) else _method_is(match)
        deadline = asyncio.get_running_loop().time() + timeout
        index = start
        while True:
            for call in self.calls[index:]:
                if predicate(call):
                    return call
            index = len(self.calls)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or not await self._calls_signal.wait(remaining):
                seen = [c.method for c in self.calls[start:]]
                raise TimeoutError(f"no matching Bot API call within {timeout}s; saw {seen}")

    async def wait_fetched(self, timeout: float = 10.0) -> None:
        """Wait until the bot has fetched every injected update with ``getUpdates``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._updates and self._last_fetched < self._updates[-1]["update_id"]:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or not await self._calls_signal.wait(remaining):
                raise TimeoutError(f"updates not fetched within {timeout}s")

    async def wait_held(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` ``getUpdates`` long polls are being held."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.held_polls < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or not await self._calls_signal.wait(remaining):
                raise TimeoutError(f"{self.held_polls} of {count} long polls held after {timeout}s")

    # ------------------------------------------------------------------ HTTP

    async def _handle_api(self, request: web.Request) -> web.Response:
        if unquote(request.match_info["token"]) != self.token:
            return web.json_response(_error_body(401, "Unauthorized"), status=401)
        sent_name = request.match_info["method"]
        method = _CANONICAL.get(sent_name.lower(), sent_name)
        params, files = await _read_params(request)
        call = Call(method, params, files)
        try:
            failures = self._failures.get(method.lower())
            if failures:
                raise failures.popleft()
            # A snapshot: later edits must not rewrite what an earlier call answered.
            call.result = copy.deepcopy(await self._dispatch(call))
        except ApiError as exc:
            _LOGGER.debug("fake Telegram %s %s -> %s", method, params, exc)
            call.status, call.error = exc.code, exc.description
            self._record(call)
            return web.json_response(
                _error_body(exc.code, exc.description, exc.retry_after), status=exc.code
            )
        _LOGGER.debug("fake Telegram %s %s -> %s", method, params, call.result)
        if method == "getUpdates":
            self.get_updates_count += 1
            self._calls_signal.notify()  # wait_fetched() watches polls
        else:
            self._record(call)
        return web.json_response({"ok": True, "result": call.result})

    async def _handle_download(self, request: web.Request) -> web.Response:
        if unquote(request.match_info["token"]) != self.token:
            return web.json_response(_error_body(401, "Unauthorized"), status=401)
        path = unquote(request.match_info["path"])
        stored = next((f for f in self._files.values() if f.file_path == path), None)
        if stored is None:
            return web.json_response(_error_body(404, "Not Found"), status=404)
        self.downloads += 1
        self.downloaded.append(stored.file_id)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._calls_signal.notify()

    async def _dispatch(self, call: Call) -> Any:
        if call.method == "getUpdates":
            return await self._get_updates(call.params)
        handler = self._handlers.get(call.method)
        if handler is None:
            _LOGGER.warning(
                "fake Telegram: unhandled method %s %s; answering true", call.method, call.params
            )
            return True
        return handler(call)

    # ------------------------------------------------------------------ updates

    def _push_update(self, payload: JsonDict) -> JsonDict:
        update = {"update_id": next(self._update_ids), **payload}
        self._updates.append(update)
        self._updates_signal.notify()
        return update

    async def _get_updates(self, params: JsonDict) -> list[JsonDict]:
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):  # form-encoded: a JSON-serialized list
            allowed = json.loads(allowed)
        if isinstance(allowed, list):
            # Bot API: the list is remembered; update types not in it are never delivered.
            self._allowed_updates = set(allowed) or None
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            batch = [u for u in self._updates if u["update_id"] >= offset and self._wanted(u)][
                :limit
            ]
            remaining = deadline - asyncio.get_running_loop().time()
            if batch or self._closing or remaining <= 0:
                break
            self.held_polls += 1
            self._calls_signal.notify()  # wait_held() watches this counter
            try:
                await self._updates_signal.wait(remaining)
            finally:
                self.held_polls -= 1
        if batch:
            self._last_fetched = max(self._last_fetched, batch[-1]["update_id"])
        return batch

    def _wanted(self, update: JsonDict) -> bool:
        if self._allowed_updates is None:
            return True
        kind = next(k for k in update if k != "update_id")
        return kind in self._allowed_updates

    # ------------------------------------------------------------------ Bot API methods

    def _method_table(self) -> dict[str, Callable[[Call], Any]]:
        return {
            "getMe": self._get_me,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._true,
            "logOut": self._true,
            "close": self._true,
            "answerCallbackQuery": self._true,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "sendMessageDraft": self._send_message_draft,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
            "sendVoice": self._send_voice,
            "sendAudio": self._send_audio,
            "sendDocument": self._send_document,
            "getFile": self._get_file,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "answerGuestQuery": self._answer_guest_query,
        }

    def _true(self, call: Call) -> bool:
        return True

    def _delete_webhook(self, call: Call) -> bool:
        if call.params.get("drop_pending_updates") is True:
            self._updates.clear()
        return True

    def _get_me(self, call: Call) -> JsonDict:
        return {
            **self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False, "can_connect_to_business": False,
            "has_main_web_app": False,
        }  # fmt: skip

    def _get_webhook_info(self, call: Call) -> JsonDict:
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(params: JsonDict) -> tuple[str, str]:
        scope = params.get("scope")
        scope_type = scope.get("type", "default") if isinstance(scope, dict) else "default"
        return str(scope_type), str(params.get("language_code") or "")

    def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, 'Bad Request: parameter "commands" is required')
        self._commands[self._commands_key(call.params)] = commands
        return True

    def _get_my_commands(self, call: Call) -> list[JsonDict]:
        return list(self._commands.get(self._commands_key(call.params), []))

    def _target(self, call: Call) -> tuple[JsonDict, JsonDict | None]:
        """Resolve chat (refusing blocked users) and the replied-to message of a send."""
        if call.params.get("chat_id") in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chat(call.params["chat_id"])
        if chat["id"] in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        reply = call.params.get("reply_parameters")
        source = reply if isinstance(reply, dict) else call.params
        reply_id = source.get("message_id" if isinstance(reply, dict) else "reply_to_message_id")
        if reply_id is None:
            return chat, None
        target = self._messages.get(chat["id"], {}).get(int(reply_id))
        if target is None and not source.get("allow_sending_without_reply"):
            raise ApiError(400, "Bad Request: message to be replied not found")
        return chat, target

    @staticmethod
    def _checked_text(params: JsonDict) -> str:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    @staticmethod
    def _extras(params: JsonDict, entities_key: str) -> JsonDict:
        """Entities and inline keyboards are echoed back; reply keyboards are not (Bot API)."""
        extras: JsonDict = {}
        if isinstance(params.get(entities_key), list):
            extras[entities_key] = params[entities_key]
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            extras["reply_markup"] = markup
        return extras

    def _send_message(self, call: Call) -> JsonDict:
        chat, reply_to = self._target(call)
        content = {"text": self._checked_text(call.params), **self._extras(call.params, "entities")}
        return self._new_message(chat, self.bot_user, reply_to, content)

    def _edit_message_text(self, call: Call) -> JsonDict | bool:
        if call.params.get("inline_message_id"):
            return self._edit_inline_text(call)
        chat = self._chat(call.params.get("chat_id"))
        message = self._messages.get(chat["id"], {}).get(int(call.params.get("message_id") or 0))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = self._checked_text(call.params)
        extras = self._extras(call.params, "entities")
        if text == message["text"] and extras.get("reply_markup") == message.get("reply_markup"):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message.pop("entities", None)
        message.pop("reply_markup", None)
        message.update(text=text, edit_date=int(time.time()), **extras)
        return message

    def _answer_guest_query(self, call: Call) -> JsonDict:
        """``answerGuestQuery``: one InlineQueryResult posted as an inline message, once per
        query; answers ``SentGuestMessage``. The refusal of an unknown or answered query reuses
        ``answerInlineQuery``'s documented text (the guest one is not documented)."""
        query = str(call.params.get("guest_query_id") or "")
        if query not in self.guest_answers or self.guest_answers[query] is not None:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        result = call.params.get("result")
        if not isinstance(result, dict) or not result.get("id") or not result.get("type"):
            raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
        message: JsonDict
        if result["type"] == "article":
            content = result.get("input_message_content") or {}
            message = {"text": self._checked_text({"text": content.get("message_text")})}
        elif result["type"] == "voice" and result.get("voice_file_id") in self._files:
            stored = self._files[result["voice_file_id"]]
            message = {"voice": self._file_object(stored, mime_type="audio/ogg")}
        else:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        inline_id = f"AgAAA{secrets.token_urlsafe(16)}"
        self.inline_messages[inline_id] = message
        self.guest_answers[query] = {"result": result, "inline_message_id": inline_id}
        return {"inline_message_id": inline_id}

    def _edit_inline_text(self, call: Call) -> bool:
        """``editMessageText`` of an inline message answers ``true``, not the message."""
        message = self.inline_messages.get(str(call.params["inline_message_id"]))
        if message is None:
            return True  # *lenient*: inline messages the fake did not post
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = self._checked_text(call.params)
        if text == message["text"]:
            raise ApiError(400, "Bad Request: message is not modified")
        message["text"] = text
        return True

    def _send_message_draft(self, call: Call) -> bool:
        """Bot API 9.3 ``sendMessageDraft``: a draft streamed into a private chat (chat_id,
        non-zero draft_id, text up to 4,096 characters, optional message_thread_id); True. The
        draft is ephemeral: nothing is stored in the chat (the call is recorded)."""
        chat = self._chat(call.params.get("chat_id"))
        if chat.get("type") != "private":
            raise ApiError(400, "Bad Request: TEXTDRAFT_PEER_INVALID")
        if not call.params.get("draft_id"):
            raise ApiError(400, "Bad Request: draft_id must be non-zero")
        text = call.params.get("text") or ""
        if len(text) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        return True

    def _delete_message(self, call: Call) -> bool:
        chat = self._chat(call.params.get("chat_id"))
        stored = self._messages.get(chat["id"], {})
        if stored.pop(int(call.params.get("message_id") or 0), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def _send_chat_action(self, call: Call) -> bool:
        self._target(call)
        if call.params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    def _media(
        self, call: Call, kind: str, path_pattern: str
    ) -> tuple[JsonDict, JsonDict | None, StoredFile, Upload | None, JsonDict]:
        """Common part of send<Media>: target, the file (upload or known file_id), caption."""
        chat, reply_to = self._target(call)
        value = call.params.get(kind)
        upload = call.files.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value.removeprefix("attach://"))
        if upload is not None:
            if not upload.data:
                raise ApiError(400, "Bad Request: file must be non-empty")
            stored = self._store_file(upload.data, None, path_pattern)
        elif isinstance(value, str) and value in self._files:
            stored = self._files[value]
        elif isinstance(value, str) and value:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        else:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        content = self._extras(call.params, "caption_entities")
        caption = call.params.get("caption")
        if isinstance(caption, str) and caption:
            if len(caption) > MAX_CAPTION_LENGTH:
                raise ApiError(400, "Bad Request: message caption is too long")
            content["caption"] = caption
        return chat, reply_to, stored, upload, content

    def _send_voice(self, call: Call) -> JsonDict:
        chat, reply_to, stored, upload, content = self._media(call, "voice", "voice/file_{n}.oga")
        guessed = upload.content_type if upload else None
        mime = "audio/ogg" if stored.data.startswith(b"OggS") else guessed or "audio/mpeg"
        duration = int(call.params.get("duration") or 0)
        content["voice"] = self._file_object(stored, duration=duration, mime_type=mime)
        return self._new_message(chat, self.bot_user, reply_to, content)

    def _send_audio(self, call: Call) -> JsonDict:
        chat, reply_to, stored, upload, content = self._media(call, "audio", "music/file_{n}")
        content["audio"] = self._file_object(
            stored,
            duration=int(call.params.get("duration") or 0),
            performer=call.params.get("performer"),
            title=call.params.get("title"),
            file_name=upload.filename if upload else None,
            mime_type=(upload.content_type if upload else None) or "audio/mpeg",
        )
        return self._new_message(chat, self.bot_user, reply_to, content)

    def _send_document(self, call: Call) -> JsonDict:
        chat, reply_to, stored, upload, content = self._media(
            call, "document", "documents/file_{n}"
        )
        content["document"] = self._file_object(
            stored,
            file_name=upload.filename if upload else None,
            mime_type=(upload.content_type if upload else None) or "application/octet-stream",
        )
        return self._new_message(chat, self.bot_user, reply_to, content)

    def _get_file(self, call: Call) -> JsonDict:
        stored = self._files.get(str(call.params.get("file_id") or ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.file_size > self.max_download_size:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size, "file_path": stored.file_path,
        }  # fmt: skip

    def _get_chat(self, call: Call) -> JsonDict:
        chat = self._chat(call.params.get("chat_id"))
        gifts = dict.fromkeys(
            ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
             "gifts_from_channels"), False,
        )  # fmt: skip
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": gifts,
        }

    def _member(self, chat_id: int, user_id: int) -> JsonDict:
        user = self.bot_user if user_id == self.bot_user["id"] else self._user(user_id)
        status = self._members.get((chat_id, user_id), "member")
        member: JsonDict = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                can_be_edited=False, is_anonymous=False, **dict.fromkeys(_ADMIN_RIGHTS, True)
            )
        elif status == "restricted":
            member.update(is_member=True, until_date=0, **dict.fromkeys(_RESTRICTED_RIGHTS, False))
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _get_chat_member(self, call: Call) -> JsonDict:
        chat = self._chat(call.params.get("chat_id"))
        return self._member(chat["id"], int(call.params.get("user_id") or 0))

    def _get_chat_administrators(self, call: Call) -> list[JsonDict]:
        chat = self._chat(call.params.get("chat_id"))
        if chat["type"] == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        return [
            self._member(chat_id, user_id)
            for (chat_id, user_id), status in self._members.items()
            if chat_id == chat["id"] and status in ("creator", "administrator")
        ]

    # ------------------------------------------------------------------ store helpers

    def _user(self, user_id: int) -> JsonDict:
        return self._users.get(user_id) or self.add_user(user_id)

    def _chat(self, chat_id: Any) -> JsonDict:
        if isinstance(chat_id, str):
            for chat in self._chats.values():
                if chat.get("username") and f"@{chat['username']}" == chat_id:
                    return chat
            if not chat_id.lstrip("-").isdigit():
                raise ApiError(400, "Bad Request: chat not found")
            chat_id = int(chat_id)
        if not isinstance(chat_id, int) or chat_id == 0:
            raise ApiError(400, "Bad Request: chat not found")
        return self._chats.get(chat_id) or self.add_chat(chat_id)

    def _message(self, chat_id: int, message_id: int) -> JsonDict:
        return self._messages[chat_id][message_id]

    def _store_file(self, data: bytes, file_size: int | None, path_pattern: str) -> StoredFile:
        n = next(self._file_numbers)
        stored = StoredFile(
            file_id=f"AwACAgQAAx{n:05d}{secrets.token_urlsafe(12)}",
            file_unique_id=f"AgAD{n:05d}",
            data=data,
            file_size=len(data) if file_size is None else file_size,
            file_path=path_pattern.format(n=n),
        )
        self._files[stored.file_id] = stored
        return stored

    @staticmethod
    def _file_object(stored: StoredFile, **extra: Any) -> JsonDict:
        obj: JsonDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        obj.update({k: v for k, v in extra.items() if v is not None})
        obj["file_size"] = stored.file_size
        return obj

    def _new_message(
        self, chat: JsonDict, sender: JsonDict, reply_to: JsonDict | None, content: JsonDict
    ) -> JsonDict:
        chat_id = chat["id"]
        counter = self._next_message_id.setdefault(chat_id, itertools.count(1))
        message: JsonDict = {
            "message_id": next(counter), "from": sender, "chat": chat, "date": int(time.time()),
        }  # fmt: skip
        if reply_to is not None:
            # Telegram: the replied-to message never carries its own reply_to_message.
            message["reply_to_message"] = {
                k: v for k, v in reply_to.items() if k != "reply_to_message"
            }
        message.update(content)
        self._messages.setdefault(chat_id, {})[message["message_id"]] = message
        return message

    def _user_message(
        self,
        chat_id: int,
        user_id: int,
        reply_to: int | None,
        content: JsonDict,
        caption: str | None = None,
    ) -> JsonDict:
        if chat_id > 0 and chat_id != user_id:
            raise ValueError(f"a private chat's id is its user's id ({chat_id} != {user_id})")
        chat = self._chat(chat_id)
        target = None if reply_to is None else self._message(chat_id, reply_to)
        if caption is not None:
            content = {**content, "caption": caption}
        message = self._new_message(chat, self._user(user_id), target, content)
        self._push_update({"message": message})
        return message


async def _not_found(request: web.Request) -> web.Response:
    return web.json_response(_error_body(404, "Not Found"), status=404)


async def _read_params(request: web.Request) -> tuple[JsonDict, dict[str, Upload]]:
    """Decode query string, urlencoded, multipart or JSON bodies (the Bot API takes all four)."""
    params: JsonDict = {k: _decode(k, v) for k, v in request.query.items()}
    files: dict[str, Upload] = {}
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params, files
    if request.body_exists:
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = Upload(name, value.filename, value.content_type, value.file.read())
            else:
                params[name] = _decode(name, str(value))
    return params, files
