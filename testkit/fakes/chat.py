"""Fake OpenAI-compatible chat completions (``POST /v1/chat/completions``, and NanoGPT's
``/api/v1/chat/completions``) on 127.0.0.1, in the documented shapes.

Request: JSON ``{model, messages: [{role, content}], max_tokens?, stream?}`` with
``Authorization: Bearer KEY``. Answer: ``{id, object: "chat.completion", created, model,
choices: [{index, message: {role: "assistant", content, refusal}, logprobs, finish_reason}],
usage: {prompt_tokens, completion_tokens, total_tokens}}``. Errors: ``{"error": {message, type,
param, code}}``: 401 ``invalid_api_key``, 404 ``model_not_found``, 400 ``context_length_exceeded``
when the prompt is over ``context_tokens``, and ``rate_limited`` next requests answered 429 with a
``Retry-After`` header (seconds) and ``x-ratelimit-*`` headers.

Knobs: ``reply(messages) -> str`` decides the assistant's text (default: a "summary" naming how
many words it read); ``models`` the known models; route name ``chat`` (``submits["chat"]``
counts answered, i.e. charged, requests).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from testkit.fakes.openai import openai_error
from testkit.fakes.providers import _FakeServer


def tokens(text: str) -> int:
    """The fake's token count: about four characters a token, as OpenAI's rule of thumb."""
    return max(1, len(text) // 4)


def _default_reply(messages: list[dict[str, Any]]) -> str:
    words = sum(len(str(m.get("content", "")).split()) for m in messages if m.get("role") == "user")
    return f"Summary of {words} words.\n- key point one\n- key point two"


class FakeChat(_FakeServer):
    """Chat completions as OpenAI (``/v1``) and NanoGPT (``/api/v1``) serve them."""

    def __init__(self, api_key: str = "test-chat-key") -> None:
        super().__init__(api_key)
        self.models = {"gpt-4o-mini", "openai/gpt-5.2"}
        self.context_tokens = 4000
        self.rate_limited = 0
        self.retry_after = 2
        self.rate_limit_after: int | None = None
        """Once this many requests were answered (charged), answer the next one with a 429."""
        self.reply: Callable[[list[dict[str, Any]]], str] = _default_reply
        self._ids = itertools.count(1)
        self.nano_url = ""
        self.delay = 0.0
        """Seconds each answered request takes (after it is counted as charged)."""
        self.answer_limit: int | None = None
        """Answer only this many requests in all: later ones are received (recorded) and held,
        in flight and not charged, until :meth:`release` (a kill test's real condition)."""
        self._released = asyncio.Event()

    def release(self, limit: int | None = None) -> None:
        """Raise (or with None lift) :attr:`answer_limit`; held requests go on."""
        self.answer_limit = limit
        self._released.set()

    def holding(self) -> bool:
        """Whether a request is held unanswered (see :attr:`answer_limit`)."""
        answered = self.submits["chat"]
        return self.answer_limit is not None and len(self.requests_to("chat")) > answered

    async def start(self) -> None:
        """``url`` ends in ``/v1`` (OpenAI's base); ``nano_url`` in ``/api`` (NanoGPT's)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/api/v1/chat/completions", self._complete)
        origin = await self._listen(app)
        self.url, self.nano_url = f"{origin}/v1", f"{origin}/api"

    async def _complete(self, request: web.Request) -> web.Response:
        rec = await self._record("chat", request)
        if (override := await self._override("chat")) is not None:
            return override
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        if self.rate_limit_after is not None and self.submits["chat"] >= self.rate_limit_after:
            self.rate_limit_after, self.rate_limited = None, self.rate_limited + 1
        if self.rate_limited:
            self.rate_limited -= 1
            response = openai_error(
                429, "Rate limit reached for requests.", kind="requests", code="rate_limit_exceeded"
            )
            response.headers.update(
                {
                    "Retry-After": str(self.retry_after),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{self.retry_after}s",
                }
            )
            return response
        body = rec.json if isinstance(rec.json, dict) else {}
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(model, str):
            return openai_error(400, "'messages' and 'model' are required.", param="messages")
        if model not in self.models:
            return openai_error(404, f"The model `{model}` does not exist.", code="model_not_found")
        prompt = sum(tokens(str(m.get("content", ""))) for m in messages)
        if prompt > self.context_tokens:
            return openai_error(
                400,
                f"This model's maximum context length is {self.context_tokens} tokens. However, "
                f"your messages resulted in {prompt} tokens.",
                param="messages",
                code="context_length_exceeded",
            )
        while self.answer_limit is not None and self.submits["chat"] >= self.answer_limit:
            self._released.clear()
            await self._released.wait()
        self.submits["chat"] += 1
        await asyncio.sleep(self.delay)
        text = self.reply(messages)
        return web.json_response(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": tokens(text),
                    "total_tokens": prompt + tokens(text),
                },
            }
        )
