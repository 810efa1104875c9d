"""OpenAI-compatible chat completions (``POST {base_url}/chat/completions``): the LLM role."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.model.errors import UnknownModel
from bot.providers.http import HttpAnswer, HttpEndpoint, HttpTransport, malformed

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation: ``system``, ``user`` or ``assistant``, and its text."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """The model's reply and what the server reported about it."""

    text: str
    finish_reason: str | None = None
    """``stop`` (done), ``length`` (cut at the token limit), ``content_filter``..."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class TextGenerator(Protocol):
    """A chat model: messages in, the assistant's reply out (summaries, translations)."""

    async def complete(
        self, messages: Sequence[ChatMessage], *, model: str, max_tokens: int | None = None
    ) -> ChatAnswer:
        """Ask ``model`` for the next assistant message.

        Raises:
            ProviderError: by HTTP status (RateLimited with ``retry_after``, UnknownModel,
                ProviderBadRequest for a prompt over the context, ...), or MalformedAnswer.
        """
        ...


class ChatCompletions:
    """The OpenAI chat-completions wire shape, non-streaming, on one :class:`HttpEndpoint`."""

    def __init__(self, http: HttpEndpoint) -> None:
        self._http = http

    async def complete(
        self, messages: Sequence[ChatMessage], *, model: str, max_tokens: int | None = None
    ) -> ChatAnswer:
        """POST ``chat/completions`` and return the first choice."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": False,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        answer = await self._http.call(
            "POST", "chat/completions", json=body, headers={"Accept": "application/json"}
        )
        return _parse(answer)


def _parse(answer: HttpAnswer) -> ChatAnswer:
    data = answer.json_object()
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise malformed(answer, "no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise malformed(answer, "choice without message content")
    raw_usage = data.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    reason = choices[0].get("finish_reason")
    return ChatAnswer(
        text=content.strip(),
        finish_reason=reason if isinstance(reason, str) else None,
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def chat_endpoint(
    transport: HttpTransport, name: str, base_url: str, api_key: str | None, timeout: float
) -> ChatCompletions:
    """Chat completions at ``base_url`` with a bearer key (OpenAI's and NanoGPT's ``/v1``
    authentication); a JSON 404 there means an unknown model."""
    return ChatCompletions(
        HttpEndpoint(
            transport,
            name,
            base_url.rstrip("/"),
            timeout,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            secrets=(api_key,) if api_key else (),
            statuses={404: UnknownModel},
        )
    )
