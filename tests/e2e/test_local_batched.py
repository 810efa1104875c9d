"""The local engine's two paths for real (tiny.en): a short note answered by submit itself, a
long recording through faster-whisper's batched pipeline with progress, live text and
cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bench.local_batched import missing_sentences, recording, silence_wav
from bot.audio import codec as audio_codec
from bot.model.speech import AudioInput, SttOptions, Transcript
from bot.providers.base import PollResult, PollStatus, Ticket
from bot.providers.local.batched import PROMPT_WORDS
from bot.providers.local.piper import PiperTextToSpeech
from bot.providers.local.settings import PiperSettings, WhisperSettings
from bot.providers.local.whisper import WhisperSpeechToText
from testkit.local_engines import (
    SENTENCE,
    VOICE,
    joe_voice_path,
    tiny_en_path,
    voice_note,
    word_error_rate,
)

pytestmark = pytest.mark.timeout(300)


async def test_local_short_note_is_answered_by_submit_itself() -> None:
    ogg = await voice_note(SENTENCE)
    provider = WhisperSpeechToText("local", WhisperSettings(cpu_threads=2))
    # The path under test, not its speed (bench/local measures that): a loaded machine may take
    # longer than the 3 s the bot waits, which would hand out a ticket instead.
    provider.inline_wait = 60.0
    model = SttOptions(model=str(tiny_en_path()))
    try:
        await provider.submit(AudioInput(ogg, "warm.ogg", "audio/ogg", 5.0), model)  # loads it
        answer = await provider.submit(AudioInput(ogg, "note.ogg", "audio/ogg", 5.0), model)
    finally:
        provider.close()
    # No ticket and no poll a second later: the reply can go out as soon as the engine is done.
    assert isinstance(answer, Transcript), answer
    assert word_error_rate(SENTENCE, answer.text) <= 0.25 and answer.language == "en"


async def test_local_long_recording_takes_the_batched_path_with_progress_and_live_text() -> None:
    piper = PiperTextToSpeech("test", PiperSettings(voices_dir=joe_voice_path().parent))
    try:
        clip, text = await recording(piper, VOICE, 90.0)  # paragraphs with pauses: VAD windows
    finally:
        piper.close()
    settings = WhisperSettings(cpu_threads=2, batch_size=2, batch_min_seconds=60.0)
    provider = WhisperSpeechToText("local", settings)
    spy = _BatchedSpy()
    try:
        assert provider.batched(clip.duration)
        with spy.installed():
            ticket = await provider.submit(clip, SttOptions(model=str(tiny_en_path())))
            assert isinstance(ticket, Ticket)
            shares, partials, result = await _follow(provider, ticket)
    finally:
        provider.close()
    transcript = result.transcript
    assert transcript is not None and transcript.language == "en"
    # The batched pipeline ran a batch at a time with the configured size, the VAD only once (each
    # call is given its windows), each batch after the first primed with the text before it.
    assert len(spy.calls) >= 2 and all(c["batch_size"] == 2 for c in spy.calls), spy.calls
    assert all(c["vad_filter"] is False and c["clip_timestamps"] for c in spy.calls)
    assert spy.calls[0]["initial_prompt"] is None
    heard = " ".join(s.text for s in transcript.segments[:2]).split()
    assert spy.calls[1]["initial_prompt"] == " ".join(heard[-PROMPT_WORDS:])
    assert word_error_rate(text, transcript.text) <= 0.15 and not missing_sentences(
        text, transcript.text
    )
    last_end = transcript.segments[-1].end
    assert len(transcript.segments) >= 3 and last_end is not None and last_end <= clip.duration + 1
    assert shares == sorted(shares) and any(0.0 < s < 1.0 for s in shares), shares
    assert partials and all(transcript.text.startswith(p) for p in partials)


async def test_local_batched_run_stops_when_the_provider_closes() -> None:
    piper = PiperTextToSpeech("test", PiperSettings(voices_dir=joe_voice_path().parent))
    try:
        clip, _ = await recording(piper, VOICE, 150.0)
    finally:
        piper.close()
    settings = WhisperSettings(cpu_threads=2, batch_size=1, batch_min_seconds=0.0)
    provider = WhisperSpeechToText("local", settings)
    ticket = await provider.submit(clip, SttOptions(model=str(tiny_en_path())))
    assert isinstance(ticket, Ticket)
    await _poll_until(provider, ticket, PollStatus.RUNNING)
    provider.close()  # shutdown: the run stops at its next window, not at the end of 150 s
    result = await _poll_until(provider, ticket, PollStatus.FAILED, PollStatus.COMPLETED)
    assert result.status is PollStatus.FAILED and result.error_code == "local_cancelled"


async def _poll_until(
    provider: WhisperSpeechToText, ticket: Ticket, *statuses: PollStatus
) -> PollResult:
    while True:
        result = await provider.poll(ticket)
        if result.status in statuses:
            return result
        await asyncio.sleep(0.02)


async def _follow(
    provider: WhisperSpeechToText, ticket: Ticket
) -> tuple[list[float], list[str], PollResult]:
    """Poll to the end: the progress shares and the distinct live texts seen on the way."""
    shares: list[float] = []
    partials: list[str] = []
    while (result := await provider.poll(ticket)).status is not PollStatus.COMPLETED:
        assert result.status in (PollStatus.PENDING, PollStatus.RUNNING), result.error
        if result.progress is not None:
            shares.append(result.progress)
        if result.partial and result.partial not in partials:
            partials.append(result.partial)
        await asyncio.sleep(0.02)
    return shares, partials, result


class _BatchedSpy:
    """Records the keywords of each ``BatchedInferencePipeline.transcribe`` call (the real method
    still runs)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @contextmanager
    def installed(self) -> Iterator[None]:
        from faster_whisper import BatchedInferencePipeline

        real = BatchedInferencePipeline.transcribe

        def spy(pipeline: Any, audio: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls.append(dict(kwargs))
            return real(pipeline, audio, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(BatchedInferencePipeline, "transcribe", spy)
            yield


async def test_local_batched_silence_is_an_empty_transcript_in_english() -> None:
    ogg = audio_codec.to_voice_clip([silence_wav(3.0)]).ogg
    settings = WhisperSettings(cpu_threads=2, batch_min_seconds=0.0)
    provider = WhisperSpeechToText("local", settings)
    try:
        answer = await provider.submit(
            AudioInput(ogg, "quiet.ogg", "audio/ogg", 3.0), SttOptions(model=str(tiny_en_path()))
        )
        if isinstance(answer, Ticket):
            result = await _poll_until(provider, answer, PollStatus.COMPLETED, PollStatus.FAILED)
            assert result.transcript is not None, result.error
            answer = result.transcript
    finally:
        provider.close()
    # No speech found: no window to decode, and an English-only model cannot detect a language.
    assert answer.text == "" and answer.segments == () and answer.language == "en"
