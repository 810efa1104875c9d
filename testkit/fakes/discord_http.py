"""HTTP plumbing of the fake Discord: recorded requests, replies, error bodies, faults."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordedPart:
    """One multipart/form-data part as the client sent it."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass(slots=True)
class RecordedRequest:
    """A request the fake received.

    ``path`` is relative to the API base (``/channels/1/messages``) for API calls and the raw
    path for anything else (``/attachments/...``). ``json`` is the JSON body, or the parsed
    ``payload_json`` part of a multipart body. ``status`` is filled in once answered.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    parts: list[RecordedPart] = field(default_factory=list)
    body: bytes = b""
    status: int | None = None
    response: Any = None

    def part(self, name: str) -> RecordedPart:
        """Return the multipart part called ``name`` (KeyError if absent)."""
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    @property
    def files(self) -> list[RecordedPart]:
        """The ``files[n]`` parts, in order."""
        return [p for p in self.parts if p.name.startswith("files[")]


@dataclass(slots=True)
class Reply:
    """What a route answers: status, JSON body (None: empty) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: int, message: str, errors: JSON | None = None) -> Reply:
    """Discord's JSON error body ``{"message", "code"[, "errors"]}``."""
    body: JSON = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return Reply(status, body)


def form_error(field_name: str, code: str, message: str) -> Reply:
    """400 Invalid Form Body (50035) naming the offending field like Discord does."""
    errors = {field_name: {"_errors": [{"code": code, "message": message}]}}
    return error(400, 50035, "Invalid Form Body", errors)


UNAUTHORIZED = error(401, 0, "401: Unauthorized")
INVALID_WEBHOOK_TOKEN = error(401, 50027, "Invalid Webhook Token")
UNKNOWN_ROUTE = error(404, 0, "Unknown")


def rate_limited(retry_after: float, *, is_global: bool = False) -> Reply:
    """A 429 with the body and headers discord.py reads (it needs ``Via`` to trust the body)."""
    reset = time.time() + retry_after
    headers = {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{reset:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": "fakebucket",
        "X-RateLimit-Scope": "shared" if not is_global else "global",
        "Via": "1.1 google",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": retry_after}
    body.update({"global": is_global, "code": 0})
    return Reply(429, body, headers)


@dataclass(slots=True)
class Fault:
    """An injected failure: matching requests get ``status``/``body`` ``times`` times."""

    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    times: int | None
    retry_after: float | None
    when: Callable[[RecordedRequest], bool] | None
    hits: int = 0

    def matches(self, req: RecordedRequest) -> bool:
        """Whether this fault is still armed and applies to ``req``."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", req.method) or not self.pattern.search(req.path):
            return False
        return self.when is None or self.when(req)

    def reply(self) -> Reply:
        """Build the reply and count the hit."""
        self.hits += 1
        if self.status == 429:
            reply = rate_limited(self.retry_after if self.retry_after is not None else 0.05)
            if self.body is not None:
                reply.body = self.body
            return reply
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return Reply(self.status, self.body, headers)


def to_response(reply: Reply) -> web.Response:
    """Render a Reply; JSON gets exactly ``application/json`` (discord.py rejects a charset)."""
    if reply.body is None:
        return web.Response(status=reply.status, headers=reply.headers)
    return web.Response(
        status=reply.status,
        body=json.dumps(reply.body).encode(),
        content_type="application/json",
        headers=reply.headers,
    )


async def read_request(request: web.Request, path: str) -> RecordedRequest:
    """Read the whole request (JSON or multipart) into a RecordedRequest."""
    rec = RecordedRequest(request.method, path, dict(request.query), dict(request.headers))
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):  # nested multipart: not used by Discord
                continue
            data = await part.read(decode=False)
            content_type = part.headers.get("Content-Type", "text/plain")
            rec.parts.append(
                RecordedPart(part.name or "", part.filename, content_type, bytes(data))
            )
        for recorded in rec.parts:
            if recorded.name == "payload_json":
                rec.json = json.loads(recorded.data)
        return rec
    rec.body = await request.read()
    if rec.body and request.content_type == "application/json":
        rec.json = json.loads(rec.body)
    return rec
