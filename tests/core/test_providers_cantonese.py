"""cantonese.ai STT client against the local fake: upload form, polling states, parsing, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.model.errors import (
    UnknownJob,
)
from bot.model.speech import AudioInput, Segment, SttOptions
from bot.providers.base import PollStatus, Ticket
from bot.providers.cantonese import NAME, CantoneseSpeechToText, endpoint
from bot.providers.http import HttpTransport
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeCantonese, UploadedFile

KEY = "test-canto-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeCantonese]:
    async with FakeCantonese() as f:
        yield f


@pytest.fixture(scope="module")
def voice() -> AudioInput:
    return AudioInput(make_tone(1.0, "mp3"), "note.mp3", "audio/mpeg", duration=1.0)


def client(session: aiohttp.ClientSession, url: str, key: str = KEY) -> CantoneseSpeechToText:
    return CantoneseSpeechToText(endpoint(HttpTransport(session), NAME, url, 5.0, key), key)


async def test_cantonese_capabilities(session: aiohttp.ClientSession) -> None:
    caps = client(session, "http://127.0.0.1:1").capabilities("any")
    assert caps.asynchronous and caps.diarization and caps.timestamps
    assert caps.min_poll_interval == 5.0 and caps.max_processing_seconds == 1800.0
    assert {"mp3", "wav", "ogg", "m4a"} <= caps.formats


async def test_cantonese_submit_form_fields(
    session: aiohttp.ClientSession, fake: FakeCantonese, voice: AudioInput
) -> None:
    options = SttOptions(model="cantonese", diarize=True, timestamps=False, context="天氣")
    ticket = await client(session, fake.url).submit(voice, options)

    assert ticket.provider == "cantonese"
    assert json.loads(json.dumps(dict(ticket.data))) == {"request_id": ticket.data["request_id"]}
    [req] = fake.requests_to("stt")
    assert req.method == "POST" and req.path == "/api/stt"
    assert req.form == {
        "api_key": KEY,
        "with_timestamp": "false",
        "with_diarization": "true",
        "wait_for_completion": "false",
        "context": "天氣",
    }
    assert req.files["data"] == UploadedFile("note.mp3", "audio/mpeg", voice.data)
    assert fake.submits["stt"] == 1


async def test_cantonese_polls_pending_processing_completed_with_diarization(
    session: aiohttp.ClientSession, fake: FakeCantonese, voice: AudioInput
) -> None:
    stt = client(session, fake.url)
    ticket = await stt.submit(voice, SttOptions(model="cantonese", diarize=True))

    first, second, done = [await stt.poll(ticket) for _ in range(3)]

    assert (first.status, second.status) == (PollStatus.PENDING, PollStatus.RUNNING)
    assert done.status is PollStatus.COMPLETED and done.transcript is not None
    transcript = done.transcript
    assert transcript.text == FakeCantonese.fused_transcription  # fused preferred
    assert transcript.segments == (
        Segment("你好，", speaker="SPEAKER_00"),
        Segment("今日天氣好好！", speaker="SPEAKER_01"),
    )
    assert transcript.diarized and transcript.duration == 3.2
    poll = fake.requests_to("get-result")[0]
    assert poll.method == "GET" and poll.path == "/api/speech-to-text/get-result"
    assert poll.query == {"id": ticket.data["request_id"]}
    assert poll.headers["x-api-key"] == KEY


async def test_cantonese_falls_back_to_plain_transcription(
    session: aiohttp.ClientSession, fake: FakeCantonese
) -> None:
    fake.push(
        "get-result",
        200,
        {
            "success": True,
            "transcription": {
                "request_id": "r1",
                "status": "completed",
                "transcription": "早晨",
                "fused_transcription": "",
                "duration_s": 1.0,
            },
        },
    )
    result = await client(session, fake.url).poll(Ticket("cantonese", {"request_id": "r1"}))
    assert result.transcript is not None
    assert result.transcript.text == "早晨"
    assert result.transcript.segments == () and not result.transcript.diarized


async def test_cantonese_processing_delay_keeps_job_running(
    session: aiohttp.ClientSession, fake: FakeCantonese, voice: AudioInput
) -> None:
    fake.polls_to_complete = 1
    fake.processing_delay = 60.0
    stt = client(session, fake.url)
    ticket = await stt.submit(voice, SttOptions(model="cantonese"))
    assert (await stt.poll(ticket)).status is PollStatus.PENDING
    assert (await stt.poll(ticket)).status is PollStatus.RUNNING
    assert fake.polls[ticket.data["request_id"]] == 2


async def test_cantonese_failed_job(session: aiohttp.ClientSession, fake: FakeCantonese) -> None:
    fake.push(
        "get-result",
        200,
        {
            "success": True,
            "transcription": {"request_id": "r1", "status": "failed", "error": "bad"},
        },
    )
    result = await client(session, fake.url).poll(Ticket("cantonese", {"request_id": "r1"}))
    assert result.status is PollStatus.FAILED and result.error and result.error_code == "failed"


async def test_cantonese_success_false_is_unknown_job(
    session: aiohttp.ClientSession, fake: FakeCantonese
) -> None:
    with pytest.raises(UnknownJob) as info:
        await client(session, fake.url).poll(Ticket("cantonese", {"request_id": "missing"}))
    assert "not found" in str(info.value)
    assert KEY not in str(info.value)
