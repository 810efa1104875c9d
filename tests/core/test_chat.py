"""The chat-completions client (the ``llm`` route) against the fake server: request and answer
shapes, typed errors (401, 404, context too long, 429 with Retry-After), NanoGPT's path, config."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bot.config.load import parse_config
from bot.model.errors import (
    ConfigError,
    MalformedAnswer,
    ProviderAuthError,
    ProviderBadRequest,
    RateLimited,
    UnknownModel,
)
from bot.providers.chat import ChatMessage, TextGenerator
from bot.providers.registry import build_text_generator
from testkit.fakes.chat import FakeChat
from testkit.support import config_dict

KEY = "test-chat-key"
ASK = [ChatMessage("system", "Summarize."), ChatMessage("user", "one two three four")]


def llm_config(tmp_path: Path, chat: FakeChat, provider: str = "brain", **llm: object) -> dict:
    data = config_dict(tmp_path, nano_url=chat.nano_url)
    data["providers"]["nanogpt"]["api_key"] = KEY
    data["providers"]["brain"] = {"type": "openai", "base_url": chat.url, "api_key": KEY}
    data["llm"] = {"provider": provider, "model": "gpt-4o-mini", **llm}
    return data


def generator(tmp_path: Path, chat: FakeChat, s: aiohttp.ClientSession, name: str) -> TextGenerator:
    config = parse_config(llm_config(tmp_path, chat, name), env={})
    llm = build_text_generator(config.providers, config.llm.provider, s)
    assert llm is not None
    return llm


async def test_chat_complete_sends_documented_request_and_reads_first_choice(
    tmp_path: Path, chat: FakeChat, session: aiohttp.ClientSession
) -> None:
    llm = generator(tmp_path, chat, session, "brain")
    answer = await llm.complete(ASK, model="gpt-4o-mini", max_tokens=200)
    assert answer.text.startswith("Summary of 4 words.") and answer.finish_reason == "stop"
    assert answer.prompt_tokens is not None and answer.completion_tokens is not None
    [sent] = chat.requests_to("chat")
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.json == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Summarize."},
            {"role": "user", "content": "one two three four"},
        ],
        "stream": False,
        "max_tokens": 200,
    }


async def test_chat_nanogpt_uses_its_openai_compatible_v1_path(
    tmp_path: Path, chat: FakeChat, session: aiohttp.ClientSession
) -> None:
    llm = generator(tmp_path, chat, session, "nanogpt")
    answer = await llm.complete(ASK, model="openai/gpt-5.2")
    assert answer.text
    [sent] = chat.requests_to("chat")
    assert sent.path == "/api/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"


async def test_chat_errors_are_typed(
    tmp_path: Path, chat: FakeChat, session: aiohttp.ClientSession
) -> None:
    llm = generator(tmp_path, chat, session, "brain")
    chat.rate_limited, chat.retry_after = 1, 3
    with pytest.raises(RateLimited) as limited:
        await llm.complete(ASK, model="gpt-4o-mini")
    assert limited.value.retry_after == 3
    with pytest.raises(UnknownModel):
        await llm.complete(ASK, model="gpt-nope")
    chat.context_tokens = 3
    with pytest.raises(ProviderBadRequest, match="maximum context length"):
        await llm.complete(ASK, model="gpt-4o-mini")
    chat.push("chat", 200, {"id": "x", "object": "chat.completion", "choices": []})
    with pytest.raises(MalformedAnswer):
        await llm.complete(ASK, model="gpt-4o-mini")
    chat.api_key = "another"
    with pytest.raises(ProviderAuthError) as refused:
        await llm.complete(ASK, model="gpt-4o-mini")
    assert KEY not in str(refused.value)
    assert chat.submits["chat"] == 0  # nothing above was answered (charged)


def test_chat_config_llm_route_needs_a_chat_capable_provider(
    tmp_path: Path, chat: FakeChat
) -> None:
    config = parse_config(llm_config(tmp_path, chat, max_input_tokens=16000), env={})
    assert (config.llm.provider, config.llm.model, config.llm.max_input_tokens) == (
        "brain",
        "gpt-4o-mini",
        16000,
    )
    assert parse_config(config_dict(tmp_path), env={}).llm.provider is None  # optional
    with pytest.raises(ConfigError, match=r"llm\.provider: 'cantonese' is type cantonese"):
        parse_config(llm_config(tmp_path, chat, "cantonese"), env={})
    with pytest.raises(ConfigError, match=r"llm\.provider: unknown provider 'gpt'"):
        parse_config(llm_config(tmp_path, chat, "gpt"), env={})
