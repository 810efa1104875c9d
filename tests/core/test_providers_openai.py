"""OpenAI-compatible STT/TTS against the fake: documented shapes out, answers in, typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.chat import render
from bot.config.load import parse_config
from bot.model.errors import (
    BotError,
    EndpointNotFound,
    MalformedAnswer,
    PayloadTooLarge,
    RateLimited,
    UnknownModel,
)
from bot.model.speech import AudioInput, Segment, SttOptions, TtsOptions
from bot.providers.openai import OpenAiSpeechToText, OpenAiTextToSpeech
from bot.providers.registry import build_providers
from bot.providers.values import segments_or_empty
from testkit.fakes.audio import decode_info, make_tone
from testkit.fakes.openai import FakeOpenAi, openai_error

KEY = "test-openai-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAi]:
    async with FakeOpenAi() as f:
        yield f


@pytest.fixture(scope="module")
def voice() -> AudioInput:
    return AudioInput(make_tone(2.0, "ogg"), "voice.ogg", "audio/ogg", duration=2.0)


def clients(
    session: aiohttp.ClientSession, url: str, key: str | None = KEY, **settings: object
) -> tuple[OpenAiSpeechToText, OpenAiTextToSpeech]:
    """Both roles built the production way: config section → registry → objects."""
    section: dict[str, object] = {"type": "openai", "base_url": url, "timeout": 5, **settings}
    if key is not None:
        section["api_key"] = key
    data = {"providers": {"oa": section}, "stt": {"provider": "oa"}, "tts": {"provider": "oa"}}
    config = parse_config(data, env={})
    stt, tts = build_providers({"oa": config.providers["oa"]}, session)
    assert isinstance(stt["oa"], OpenAiSpeechToText)
    assert isinstance(tts["oa"], OpenAiTextToSpeech)
    return stt["oa"], tts["oa"]


async def test_openai_stt_sends_documented_multipart_and_parses_verbose_json(
    session: aiohttp.ClientSession, fake: FakeOpenAi, voice: AudioInput
) -> None:
    stt, _ = clients(session, fake.url)
    transcript = await stt.submit(voice, SttOptions(model="whisper-1", language="en"))
    [sent] = fake.requests_to("transcriptions")
    assert sent.path == "/v1/audio/transcriptions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.files["file"].filename == "voice.ogg" and sent.files["file"].data == voice.data
    assert sent.form["model"] == "whisper-1" and sent.form["language"] == "en"
    assert sent.form["response_format"] == "verbose_json"
    assert sent.form_lists["timestamp_granularities[]"] == ["segment", "word"]
    assert transcript.text == "Hello there. Hi, how are you?"
    assert [s.text for s in transcript.segments] == ["Hello there.", "Hi, how are you?"]
    assert transcript.segments[1].end == pytest.approx(2.0, abs=0.05)
    assert [w.text for w in transcript.words][:2] == ["Hello", "there."]
    assert transcript.language == "english" and not transcript.diarized
    assert render.to_srt(transcript) is not None
    assert stt.capabilities("whisper-1").timestamps


async def test_openai_stt_auto_language_is_omitted(
    session: aiohttp.ClientSession, fake: FakeOpenAi, voice: AudioInput
) -> None:
    stt, _ = clients(session, fake.url)
    await stt.submit(voice, SttOptions(model="whisper-1", language="auto"))
    assert "language" not in fake.requests_to("transcriptions")[0].form


async def test_openai_stt_falls_back_to_json_when_verbose_is_refused_and_remembers(
    session: aiohttp.ClientSession, voice: AudioInput
) -> None:
    async with FakeOpenAi(refuse_verbose=True) as fake:
        stt, _ = clients(session, fake.url)
        first = await stt.submit(voice, SttOptions(model="whisper-large-v3-turbo"))
        formats = [r.form["response_format"] for r in fake.requests_to("transcriptions")]
        assert formats == ["verbose_json", "json"]
        assert first.text == "Hello there. Hi, how are you?" and first.segments == ()
        assert render.to_srt(first) is None  # the CLI says timings are unavailable
        assert not stt.capabilities("whisper-large-v3-turbo").timestamps
        await stt.submit(voice, SttOptions(model="whisper-large-v3-turbo"))
        assert len(fake.requests_to("transcriptions")) == 3  # no second refused request
        assert fake.submits["transcriptions"] == 2


async def test_openai_stt_json_only_models_ask_for_json_directly(
    session: aiohttp.ClientSession, fake: FakeOpenAi, voice: AudioInput
) -> None:
    stt, _ = clients(session, fake.url)
    transcript = await stt.submit(voice, SttOptions(model="gpt-4o-transcribe"))
    [sent] = fake.requests_to("transcriptions")
    assert sent.form["response_format"] == "json"
    assert "timestamp_granularities[]" not in sent.form
    assert transcript.text and not stt.capabilities("gpt-4o-transcribe").timestamps


async def test_openai_stt_diarize_model_maps_speakers(
    session: aiohttp.ClientSession, fake: FakeOpenAi, voice: AudioInput
) -> None:
    stt, _ = clients(session, fake.url)
    model = "gpt-4o-transcribe-diarize"
    assert stt.capabilities(model).diarization and not stt.capabilities("whisper-1").diarization
    transcript = await stt.submit(voice, SttOptions(model=model, diarize=True))
    [sent] = fake.requests_to("transcriptions")
    assert sent.form["response_format"] == "diarized_json"
    assert sent.form["chunking_strategy"] == "auto"
    assert [s.speaker for s in transcript.segments] == ["A", "B"] and transcript.diarized
    assert render.render_diarized(transcript).splitlines()[0] == "Speaker 1: Hello there."


async def test_openai_without_api_key_sends_no_authorization(
    session: aiohttp.ClientSession, voice: AudioInput
) -> None:
    async with FakeOpenAi(api_key=None) as fake:
        stt, tts = clients(session, fake.url, key=None)
        await stt.submit(voice, SttOptions(model="whisper-1"))
        await tts.submit("Hi", TtsOptions(model="kokoro", voice="af_bella"))
        assert all("Authorization" not in r.headers for r in fake.requests)


async def test_openai_tts_sends_documented_json_and_returns_opus(
    session: aiohttp.ClientSession, fake: FakeOpenAi
) -> None:
    _, tts = clients(session, fake.url, instructions="Speak warmly.")
    audio = await tts.submit("Hello there.", TtsOptions(model="tts-1", voice="nova", speed=9.0))
    [sent] = fake.requests_to("speech")
    assert sent.json == {
        "model": "tts-1",
        "input": "Hello there.",
        "voice": "nova",
        "response_format": "opus",
        "speed": 4.0,  # clamped to the documented range
        "instructions": "Speak warmly.",
    }
    assert audio.content_type == "audio/ogg"
    assert decode_info(audio.data)[:2] == ("ogg", "opus")
    assert tts.capabilities("tts-1").max_chars == 4096


async def test_openai_tts_speech_format_is_configurable(
    session: aiohttp.ClientSession, fake: FakeOpenAi
) -> None:
    _, tts = clients(session, fake.url, speech_format="wav")
    audio = await tts.submit("Hello.", TtsOptions(model="tts-1", voice="nova"))
    assert fake.requests_to("speech")[0].json["response_format"] == "wav"
    assert audio.content_type == "audio/wav" and decode_info(audio.data)[0] == "wav"


async def test_openai_unknown_model_is_named(
    session: aiohttp.ClientSession, fake: FakeOpenAi, voice: AudioInput
) -> None:
    stt, tts = clients(session, fake.url)
    with pytest.raises(UnknownModel) as info:
        await stt.submit(voice, SttOptions(model="whisper-9"))
    assert "'whisper-9'" in info.value.user_message and info.value.status == 404
    with pytest.raises(UnknownModel) as info:
        await tts.submit("Hi", TtsOptions(model="tts-9", voice="alloy"))
    assert "'tts-9'" in info.value.user_message


async def test_openai_speech_on_a_server_without_the_route_names_the_route_not_the_model(
    session: aiohttp.ClientSession, fake: FakeOpenAi
) -> None:
    fake.speech_route = False  # faster-whisper-server: {"detail": "Not Found"}, no error code
    _, tts = clients(session, fake.url)
    with pytest.raises(EndpointNotFound) as info:
        await tts.submit("Hi", TtsOptions(model="tts-1", voice="alloy"))
    assert info.value.user_message == (
        "This server has no text-to-speech (POST /v1/audio/speech not found)."
    )
    assert "tts-1" not in info.value.user_message and info.value.status == 404
    assert "no text-to-speech" in str(info.value) and "Not Found" in str(info.value)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # A server that words an unknown model its own way, without OpenAI's code.
        ({"detail": "Model 'tts-9' is not installed"}, UnknownModel),
        ({"error": {"message": "no such thing", "code": "model_not_found"}}, UnknownModel),
        ({"detail": "Not Found"}, EndpointNotFound),
    ],
)
async def test_openai_speech_404_names_the_model_only_when_the_answer_is_about_one(
    session: aiohttp.ClientSession, fake: FakeOpenAi, body: object, error: type[BotError]
) -> None:
    _, tts = clients(session, fake.url)
    fake.push("speech", 404, body)
    with pytest.raises(error) as info:
        await tts.submit("Hi", TtsOptions(model="tts-9", voice="alloy"))
    assert ("'tts-9'" in info.value.user_message) is (error is UnknownModel)


async def test_openai_oversized_upload_refused_before_and_by_the_server(
    session: aiohttp.ClientSession, fake: FakeOpenAi
) -> None:
    """Refused before sending: test_providers_contract.py. Here: the server's own limit."""
    big = AudioInput(b"\0" * (26 * 1024 * 1024), "big.wav", "audio/wav", duration=600.0)
    # An instance configured with a higher limit than the server has: the server's 413.
    lax, _ = clients(session, fake.url, max_upload_bytes=100 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge) as info:
        await lax.submit(big, SttOptions(model="whisper-1"))
    assert info.value.status == 413 and "too large" in info.value.user_message


async def test_openai_rate_limit_waits_for_the_exhausted_budget(
    session: aiohttp.ClientSession, fake: FakeOpenAi, voice: AudioInput
) -> None:
    stt, _ = clients(session, fake.url)
    fake.rate_limited = 1
    with pytest.raises(RateLimited) as info:
        await stt.submit(voice, SttOptions(model="whisper-1"))
    # requests are used up (reset 1s); tokens are not (their 6m0s reset does not apply).
    assert info.value.retry_after == pytest.approx(1.0)
    fake.push("transcriptions", 429, openai_error_body(), {"Retry-After": "7"})
    with pytest.raises(RateLimited) as info:
        await stt.submit(voice, SttOptions(model="whisper-1"))
    assert info.value.retry_after == pytest.approx(7.0)


async def test_openai_tts_html_instead_of_audio_is_malformed(
    session: aiohttp.ClientSession, fake: FakeOpenAi
) -> None:
    _, tts = clients(session, fake.url)
    fake.push("speech", 200, "<html>login</html>", {"Content-Type": "text/html"})
    with pytest.raises(MalformedAnswer) as info:
        await tts.submit("Hi", TtsOptions(model="tts-1", voice="alloy"))
    assert "text/html instead of audio" in str(info.value)


def openai_error_body() -> dict[str, object]:
    return {
        "error": {
            "message": "Rate limit reached",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def test_openai_error_helper_matches_the_documented_shape() -> None:
    response = openai_error(401, "bad key", code="invalid_api_key")
    assert response.status == 401
    assert response.text is not None and '"param": null' in response.text


def test_segments_or_empty_reads_openai_segments_leniently() -> None:
    raw = [
        {"id": 0, "text": " Hello there. ", "start": 0, "end": "1.5", "speaker": "A"},
        "not an object",
        {"text": "Second.", "start": True, "end": None, "speaker": ""},
    ]
    assert segments_or_empty(raw) == (
        Segment("Hello there.", 0.0, 1.5, "A"),
        Segment("Second.", None, None, None),
    )
    assert segments_or_empty({"segments": raw}) == ()  # not a list: none
    assert segments_or_empty(None) == ()
