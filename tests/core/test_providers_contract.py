"""The contract every speech-to-text provider keeps, run against each one's fake server: a wrong
key, a refused connection, a hanging server, an oversized upload and each HTTP failure become the
same typed errors (what differs per vendor is in test_providers_<vendor>.py)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bot.config.load import parse_config
from bot.model.errors import (
    EndpointNotFound,
    InsufficientBalance,
    MalformedAnswer,
    PayloadTooLarge,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from bot.model.speech import AudioInput, SttOptions
from bot.providers.base import SpeechToText
from bot.providers.registry import build_providers
from testkit.fakes.audio import make_tone
from testkit.fakes.openai import FakeOpenAi
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt

Fake = FakeNanoGpt | FakeCantonese | FakeOpenAi


@dataclass(frozen=True)
class Vendor:
    """One provider type as the contract sees it: its fake, its config, its submit route."""

    name: str  # the config section's name: errors carry it as ``provider``
    type: str
    key: str
    route: str  # the fake's route for an STT submit (``push``, ``submits``)
    model: str
    path: str  # the base URL's path after host:port
    fake: Callable[[], AbstractAsyncContextManager[Fake]]
    voice: AudioInput
    max_upload: int
    auth_text: str  # what the vendor's 401 says (kept in the error, without the key)
    echo_key: bool = False  # the 401 answer repeats the wrong key (pushed: the fake's own does not)
    extra: dict[str, Any] = field(default_factory=dict)

    def stt(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        key: str | None = None,
        timeout: float = 5,
    ) -> SpeechToText:
        """The STT client built the production way: config section → registry → object."""
        section = {"type": self.type, "base_url": url, "timeout": timeout, **self.extra}
        section["api_key"] = self.key if key is None else key
        # TTS stays on NanoGPT's default, which needs some key to validate (never built here).
        providers = {"nanogpt": {"api_key": "unused"}, self.name: section}
        data = {"providers": providers, "stt": {"provider": self.name}}
        config = parse_config(data, env={})
        stt, _ = build_providers({self.name: config.providers[self.name]}, session)
        return stt[self.name]


NANOGPT = Vendor(
    "nanogpt",
    "nanogpt",
    "test-nano-key",
    "transcribe",
    "Whisper-Large-V3",
    "/api",
    FakeNanoGpt,
    AudioInput(make_tone(1.5, "ogg"), "voice.ogg", "audio/ogg", duration=90.0),
    3_000_000,
    "Invalid API key",
    echo_key=True,
)
CANTONESE = Vendor(
    "cantonese",
    "cantonese",
    "test-canto-key",
    "stt",
    "cantonese",
    "",
    FakeCantonese,
    AudioInput(make_tone(1.0, "mp3"), "note.mp3", "audio/mpeg", duration=1.0),
    50_000_000,
    "Invalid API key",
)
OPENAI = Vendor(
    "oa",
    "openai",
    "test-openai-key",
    "transcriptions",
    "whisper-1",
    "/v1",
    FakeOpenAi,
    AudioInput(make_tone(2.0, "ogg"), "voice.ogg", "audio/ogg", duration=2.0),
    25 * 1024 * 1024,
    "Incorrect API key",
)
VENDORS = [pytest.param(v, id=v.type) for v in (NANOGPT, CANTONESE, OPENAI)]


@pytest.fixture(params=VENDORS)
def vendor(request: pytest.FixtureRequest) -> Vendor:
    value: Vendor = request.param
    return value


@pytest.fixture
async def fake(vendor: Vendor) -> AsyncIterator[Fake]:
    async with vendor.fake() as f:
        yield f


async def test_provider_wrong_key_is_an_auth_error_without_the_key(
    session: aiohttp.ClientSession, vendor: Vendor, fake: Fake
) -> None:
    wrong = "sk-wrong-SECRET-key-1234"
    if vendor.echo_key:
        fake.push(vendor.route, 401, {"error": f"Invalid API key {wrong}"})
    with pytest.raises(ProviderAuthError) as info:
        await vendor.stt(session, fake.url, key=wrong).submit(
            vendor.voice, SttOptions(model=vendor.model)
        )
    assert info.value.status == 401 and info.value.provider == vendor.name
    assert vendor.auth_text in str(info.value)
    assert wrong not in str(info.value)
    assert info.value.__cause__ is None or wrong not in str(info.value.__cause__)
    assert "key was rejected" in info.value.user_message
    assert fake.submits[vendor.route] == 0


async def test_provider_connection_refused_is_not_sent(
    session: aiohttp.ClientSession, vendor: Vendor
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}{vendor.path}"
    with pytest.raises(ProviderUnavailable) as info:
        await vendor.stt(session, url).submit(vendor.voice, SttOptions(model=vendor.model))
    assert info.value.request_sent is False
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


async def test_provider_hanging_server_times_out_maybe_sent(
    session: aiohttp.ClientSession, vendor: Vendor, fake: Fake
) -> None:
    # The timeout itself is under test: the fake answers 0.3 s after the client gives up.
    fake.push(vendor.route, 200, {"text": "late"}, delay=0.6)
    client = vendor.stt(session, fake.url, timeout=0.3)
    with pytest.raises(ProviderTimeout) as info:
        await client.submit(vendor.voice, SttOptions(model=vendor.model))
    assert isinstance(info.value, ProviderUnavailable)
    assert info.value.request_sent is True
    assert info.value.retryable
    assert "no complete answer within 0.3 s" in str(info.value)
    assert "did not answer in time" in info.value.user_message


async def test_provider_oversized_upload_refused_locally(
    session: aiohttp.ClientSession, vendor: Vendor, fake: Fake
) -> None:
    big = AudioInput(b"\0" * (vendor.max_upload + 1), "big.wav", "audio/wav", duration=100.0)
    with pytest.raises(PayloadTooLarge) as info:
        await vendor.stt(session, fake.url).submit(big, SttOptions(model=vendor.model))
    assert info.value.request_sent is False
    assert fake.requests == []


HTML = {"Content-Type": "text/html"}
QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
SERVER = {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
FASTAPI_422 = {"detail": [{"msg": "field required", "loc": ["body", "file"]}]}
CANTO_FAIL = {"success": False, "error": "quota exceeded"}
# (vendor, HTTP status, body, headers, error, Retry-After read); ``None`` status: not checked.
FAILURES: list[tuple[Vendor, int, object, dict[str, str] | None, type[ProviderError], Any]] = [
    (NANOGPT, 400, {"error": "Unsupported format"}, None, ProviderBadRequest, None),
    (NANOGPT, 401, {"error": "Invalid API key"}, None, ProviderAuthError, None),
    (NANOGPT, 403, {"error": "Forbidden"}, None, ProviderAuthError, None),
    (NANOGPT, 402, {"error": "Insufficient balance"}, None, InsufficientBalance, None),
    (NANOGPT, 413, {"error": "File too large"}, None, PayloadTooLarge, None),
    (NANOGPT, 429, {"error": "Slow down"}, {"Retry-After": "7"}, RateLimited, 7.0),
    (NANOGPT, 500, "<html>Internal error</html>", None, ProviderUnavailable, None),
    (NANOGPT, 503, {"error": "maintenance"}, {"Retry-After": "30"}, ProviderUnavailable, 30.0),
    (NANOGPT, 200, "{not json", None, MalformedAnswer, None),
    (NANOGPT, 200, {"unexpected": True}, None, MalformedAnswer, None),
    (
        CANTONESE,
        400,
        {"success": False, "error": "Unsupported file"},
        None,
        ProviderBadRequest,
        None,
    ),
    (CANTONESE, 401, {"success": False, "error": "Invalid API key"}, None, ProviderAuthError, None),
    (
        CANTONESE,
        402,
        {"success": False, "error": "Not enough credits"},
        None,
        InsufficientBalance,
        None,
    ),
    (
        CANTONESE,
        429,
        {"success": False, "error": "Too many"},
        {"Retry-After": "12"},
        RateLimited,
        12.0,
    ),
    (CANTONESE, 502, "Bad gateway", None, ProviderUnavailable, None),
    (CANTONESE, 200, "<!doctype html>", None, MalformedAnswer, None),
    (CANTONESE, 200, CANTO_FAIL, None, ProviderBadRequest, None),
    (OPENAI, 200, "<!doctype html><title>Whisper UI</title>", HTML, MalformedAnswer, None),
    (OPENAI, 200, "{garbage", None, MalformedAnswer, None),
    (OPENAI, 200, {"segments": []}, None, MalformedAnswer, None),
    (OPENAI, 404, "<html>Not Found</html>", HTML, EndpointNotFound, None),
    (OPENAI, 500, SERVER, None, ProviderUnavailable, None),
    (OPENAI, 429, QUOTA, None, InsufficientBalance, None),
    (OPENAI, 422, FASTAPI_422, None, ProviderBadRequest, None),
]


@pytest.mark.parametrize(
    ("vendor", "status", "body", "headers", "error", "retry_after"),
    [pytest.param(*row, id=f"{row[0].type}-{row[1]}-{row[4].__name__}") for row in FAILURES],
)
async def test_provider_submit_failures_are_typed(
    session: aiohttp.ClientSession,
    vendor: Vendor,
    fake: Fake,
    status: int,
    body: object,
    headers: dict[str, str] | None,
    error: type[ProviderError],
    retry_after: float | None,
) -> None:
    fake.push(vendor.route, status, body, headers)
    with pytest.raises(error) as info:
        await vendor.stt(session, fake.url).submit(vendor.voice, SttOptions(model=vendor.model))
    exc = info.value
    assert type(exc) is error
    assert exc.provider == vendor.name and exc.status == status
    assert exc.retry_after == retry_after
    assert exc.request_sent is True
    assert vendor.key not in str(exc) and vendor.key not in exc.user_message
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        assert body["error"] in str(exc)
