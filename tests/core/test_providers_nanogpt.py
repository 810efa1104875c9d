"""NanoGPT STT/TTS clients against the local fake: shapes sent, answers parsed, errors typed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.model.errors import (
    ContentPolicyViolation,
    InsufficientBalance,
    ProviderAuthError,
    RateLimited,
    UnknownJob,
)
from bot.model.speech import AudioInput, SpeechAudio, SttOptions, Transcript, TtsOptions
from bot.providers.base import PollStatus, Ticket
from bot.providers.http import HttpTransport
from bot.providers.nanogpt import NanoGptSpeechToText, NanoGptTextToSpeech
from testkit.fakes.audio import decode_info, make_tone
from testkit.fakes.providers import FakeNanoGpt, UploadedFile

KEY = "test-nano-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeNanoGpt]:
    async with FakeNanoGpt() as f:
        yield f


@pytest.fixture(scope="module")
def voice() -> AudioInput:
    return AudioInput(make_tone(1.5, "ogg"), "voice.ogg", "audio/ogg", duration=90.0)


def stt(session: aiohttp.ClientSession, url: str, key: str = KEY) -> NanoGptSpeechToText:
    return NanoGptSpeechToText(HttpTransport(session), api_key=key, base_url=url, timeout=5.0)


def tts(session: aiohttp.ClientSession, url: str, key: str = KEY) -> NanoGptTextToSpeech:
    return NanoGptTextToSpeech(HttpTransport(session), api_key=key, base_url=url, timeout=5.0)


async def test_nanogpt_stt_capabilities_per_model(session: aiohttp.ClientSession) -> None:
    client = stt(session, "http://127.0.0.1:1/api")
    whisper = client.capabilities("Whisper-Large-V3")
    eleven = client.capabilities("Elevenlabs-STT")
    unknown = client.capabilities("Some-New-Model")
    assert (whisper.asynchronous, whisper.diarization, whisper.timestamps) == (False, False, False)
    assert (eleven.asynchronous, eleven.diarization, eleven.timestamps) == (True, True, True)
    assert unknown.asynchronous is False and unknown.diarization is False
    assert whisper.max_upload_bytes == 3_000_000
    assert {"ogg", "mp3", "wav", "m4a", "webm", "flac"} <= whisper.formats


async def test_nanogpt_stt_sync_whisper_request_shape_and_transcript(
    session: aiohttp.ClientSession, fake: FakeNanoGpt, voice: AudioInput
) -> None:
    result = await stt(session, fake.url).submit(voice, SttOptions(model="Whisper-Large-V3"))

    assert isinstance(result, Transcript)
    assert f"{len(voice.data)} bytes" in result.text
    assert result.language == "en"
    assert result.duration == pytest.approx(90.0)
    assert (result.cost, result.currency, result.diarized) == (0.001, "USD", False)
    [req] = fake.requests_to("transcribe")
    assert req.method == "POST" and req.path == "/api/transcribe"
    assert req.headers["x-api-key"] == KEY
    assert req.files["audio"] == UploadedFile("voice.ogg", "audio/ogg", voice.data)
    assert req.form == {"model": "Whisper-Large-V3", "language": "auto", "actualDuration": "1.5"}
    assert fake.submits["transcribe"] == 1


async def test_nanogpt_stt_elevenlabs_polls_to_diarized_transcript(
    session: aiohttp.ClientSession, fake: FakeNanoGpt, voice: AudioInput
) -> None:
    client = stt(session, fake.url)
    options = SttOptions(model="Elevenlabs-STT", language="en", diarize=True)

    ticket = await client.submit(voice, options)

    assert isinstance(ticket, Ticket)
    assert ticket.provider == "nanogpt" and ticket.cost == 0.02
    submit = fake.requests_to("transcribe")[0]
    assert submit.form["diarize"] == "true" and submit.form["language"] == "en"
    statuses = [(await client.poll(ticket)).status for _ in range(2)]
    assert statuses == [PollStatus.PENDING, PollStatus.RUNNING]
    done = await client.poll(ticket)
    assert done.status is PollStatus.COMPLETED and done.transcript is not None
    transcript = done.transcript
    assert transcript.text == "Hello there. Hi, how are you?"
    assert transcript.diarized
    assert [(s.speaker, s.text) for s in transcript.segments] == [
        ("speaker_0", "Hello there."),
        ("speaker_1", "Hi, how are you?"),
    ]
    assert [w.text for w in transcript.words] == ["Hello", "there.", "Hi,", "how", "are", "you?"]
    assert transcript.words[2].speaker == "speaker_1" and transcript.words[2].start == 1.2
    assert fake.polls[ticket.data["runId"]] == 3


async def test_nanogpt_stt_status_poll_echoes_ticket(
    session: aiohttp.ClientSession, fake: FakeNanoGpt, voice: AudioInput
) -> None:
    client = stt(session, fake.url)
    ticket = await client.submit(voice, SttOptions(model="Elevenlabs-STT", diarize=True))
    assert isinstance(ticket, Ticket)

    # A restart keeps only the JSON-serialised ticket data.
    restored = Ticket("nanogpt", json.loads(json.dumps(dict(ticket.data))), ticket.cost)
    await client.poll(restored)

    [req] = fake.requests_to("transcribe/status")
    assert req.headers["x-api-key"] == KEY
    assert req.json == {
        "runId": ticket.data["runId"],
        "cost": 0.02,
        "paymentSource": "USD",
        "isApiRequest": True,
        "fileName": "voice.ogg",
        "fileSize": len(voice.data),
        "chargedDuration": 1.5,
        "diarize": True,
    }


async def test_nanogpt_stt_processing_delay_holds_completion(
    session: aiohttp.ClientSession, fake: FakeNanoGpt, voice: AudioInput
) -> None:
    fake.polls_to_complete = 1
    fake.processing_delay = 60.0
    client = stt(session, fake.url)
    ticket = await client.submit(voice, SttOptions(model="Elevenlabs-STT"))
    assert isinstance(ticket, Ticket)
    assert (await client.poll(ticket)).status is PollStatus.PENDING
    fake.processing_delay = 0.0
    assert (await client.poll(ticket)).status is PollStatus.COMPLETED


async def test_nanogpt_stt_failed_run_is_poll_failure(
    session: aiohttp.ClientSession, fake: FakeNanoGpt, voice: AudioInput
) -> None:
    client = stt(session, fake.url)
    ticket = await client.submit(voice, SttOptions(model="Elevenlabs-STT"))
    assert isinstance(ticket, Ticket)
    fake.push("transcribe/status", 200, {"status": "failed", "error": "Audio could not be decoded"})

    result = await client.poll(ticket)

    assert result.status is PollStatus.FAILED
    assert result.error and KEY not in result.error
    assert result.error_code == "failed"


async def test_nanogpt_stt_unknown_run_is_unknown_job(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    ticket = Ticket("nanogpt", {"runId": "nope", "cost": 0.02, "paymentSource": "USD"})
    with pytest.raises(UnknownJob) as info:
        await stt(session, fake.url).poll(ticket)
    assert info.value.status == 404 and "Run not found" in str(info.value)


async def test_nanogpt_retry_after_http_date(
    session: aiohttp.ClientSession, fake: FakeNanoGpt, voice: AudioInput
) -> None:
    fake.push(
        "transcribe", 429, {"error": "busy"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    with pytest.raises(RateLimited) as info:
        await stt(session, fake.url).submit(voice, SttOptions(model="Wizper"))
    assert info.value.retry_after == 0.0  # a date in the past means "now"


async def test_nanogpt_tts_binary_answer(session: aiohttp.ClientSession, fake: FakeNanoGpt) -> None:
    options = TtsOptions(model="Kokoro-82m", voice="af_bella", speed=1.2)
    audio = await tts(session, fake.url).submit("Hello world", options)

    assert isinstance(audio, SpeechAudio)
    assert audio.content_type == "audio/mpeg"
    assert decode_info(audio.data)[0] == "mp3"
    [req] = fake.requests_to("tts")
    assert req.headers["x-api-key"] == KEY
    assert req.json == {
        "text": "Hello world",
        "model": "Kokoro-82m",
        "voice": "af_bella",
        "speed": 1.2,
    }


async def test_nanogpt_tts_json_audio_url_same_origin(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    fake.tts_mode = "json"
    audio = await tts(session, fake.url).submit("Hi", TtsOptions(model="tts-1", voice="alloy"))
    assert isinstance(audio, SpeechAudio) and audio.data == fake.audio_bytes
    [download] = fake.requests_to("audio")
    assert download.headers.get("x-api-key") == KEY


async def test_nanogpt_tts_json_audio_url_other_host_gets_no_key(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeNanoGpt(separate_audio_host=True) as fake:
        fake.tts_mode = "json"
        audio = await tts(session, fake.url).submit("Hi", TtsOptions(model="tts-1", voice="alloy"))
        assert isinstance(audio, SpeechAudio) and audio.data == fake.audio_bytes
        assert audio.content_type == "audio/mpeg"
        [download] = fake.requests_to("audio")
        assert "x-api-key" not in download.headers
        assert all(KEY not in v for v in download.headers.values())


async def test_nanogpt_tts_async_queue_then_completed(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    client = tts(session, fake.url)
    assert client.capabilities("Elevenlabs-V3").asynchronous
    assert not client.capabilities("Kokoro-82m").asynchronous
    ticket = await client.submit("Hello", TtsOptions(model="Elevenlabs-V3", voice="Rachel"))
    assert isinstance(ticket, Ticket) and ticket.cost == 0.05

    first = await client.poll(ticket)
    assert first.status is PollStatus.PENDING and first.queue_position == 2
    await client.poll(ticket)
    done = await client.poll(ticket)

    assert done.status is PollStatus.COMPLETED and done.audio is not None
    assert done.audio.data == fake.audio_bytes
    req = fake.requests_to("tts/status")[0]
    assert req.method == "GET" and req.headers["x-api-key"] == KEY
    assert req.query == {
        "runId": ticket.data["runId"],
        "model": "Elevenlabs-V3",
        "cost": "0.05",
        "paymentSource": "USD",
        "isApiRequest": "true",
    }


async def test_nanogpt_tts_timed_queue_reports_places_then_zero(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    """The fake's timed mode keeps the documented TTS shape: only "pending" + queuePosition."""
    fake.queue_slot_seconds = 0.1
    fake.processing_time = lambda kind, model, info: (0.25, 0.3)  # queued 0.25 s, then 0.3 s work
    client = tts(session, fake.url)
    ticket = await client.submit("Hello", TtsOptions(model="Elevenlabs-V3", voice="Rachel"))
    assert isinstance(ticket, Ticket)
    queued = await client.poll(ticket)
    assert queued.status is PollStatus.PENDING and queued.queue_position in (1, 2, 3)
    # The fake's timed queue is what is under test: its places move with time, not with calls.
    await asyncio.sleep(0.3)
    working = await client.poll(ticket)
    assert working.status is PollStatus.PENDING and working.queue_position == 0
    await asyncio.sleep(0.3)
    assert (await client.poll(ticket)).status is PollStatus.COMPLETED


async def test_nanogpt_tts_content_policy_violation_is_final(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    client = tts(session, fake.url)
    ticket = await client.submit("bad words", TtsOptions(model="Elevenlabs-V3", voice="Rachel"))
    assert isinstance(ticket, Ticket)
    fake.push(
        "tts/status",
        200,
        {
            "status": "error",
            "error": "Content policy violation",
            "code": "CONTENT_POLICY_VIOLATION",
        },
    )
    result = await client.poll(ticket)
    assert result.status is PollStatus.FAILED
    assert result.error_code == "CONTENT_POLICY_VIOLATION"
    assert result.error == ContentPolicyViolation.default_message.id


async def test_nanogpt_tts_other_error_is_generic_failure(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    client = tts(session, fake.url)
    ticket = await client.submit("x", TtsOptions(model="Elevenlabs-Turbo-V2.5", voice="Rachel"))
    assert isinstance(ticket, Ticket)
    fake.push("tts/status", 200, {"status": "error", "error": "voice not found"})
    result = await client.poll(ticket)
    assert result.status is PollStatus.FAILED
    assert (
        result.error_code == "failed" and result.error != ContentPolicyViolation.default_message.id
    )


async def test_nanogpt_tts_402_is_insufficient_balance(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    fake.push("tts", 402, {"error": "Insufficient balance"})
    with pytest.raises(InsufficientBalance):
        await tts(session, fake.url).submit("Hi", TtsOptions(model="tts-1", voice="alloy"))
    assert fake.submits["tts"] == 0


async def test_nanogpt_tts_missing_key_answers_401(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    with pytest.raises(ProviderAuthError):
        await tts(session, fake.url, key="").submit("Hi", TtsOptions(model="tts-1", voice="alloy"))


async def test_nanogpt_tts_char_limits(session: aiohttp.ClientSession) -> None:
    client = tts(session, "http://127.0.0.1:1/api")
    assert client.capabilities("tts-1").max_chars == 4096
    assert client.capabilities("Elevenlabs-V3").max_chars == 5000
    assert client.capabilities("Elevenlabs-V3").min_poll_interval >= 2.0


async def test_fake_wait_for_counts_requests(
    session: aiohttp.ClientSession, fake: FakeNanoGpt
) -> None:
    waiter = asyncio.create_task(fake.wait_for("tts", count=2, timeout=5.0))
    client = tts(session, fake.url)
    await client.submit("one", TtsOptions(model="tts-1", voice="alloy"))
    assert not waiter.done()
    await client.submit("two", TtsOptions(model="tts-1", voice="alloy"))
    await waiter
