"""What a job asks its provider: the audio and options of a submit, the ticket of TTS parts."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.jobs.outcomes import part_entry
from bot.jobs.speech_translate import by_speech
from bot.model.errors import AudioError
from bot.model.job import Blob, Job
from bot.model.speech import AudioInput, SpeechAudio, SttOptions, TtsOptions
from bot.providers.base import Ticket
from bot.text import msg

_LOGGER = logging.getLogger(__name__)


def audio_input(job: Job, blob: Blob | None) -> AudioInput:
    """The recording of a speech job as a provider takes it; AudioError if it is gone."""
    if blob is None:
        raise AudioError(user_message=msg("The audio for this job is gone; please send it again."))
    return AudioInput(
        data=blob.data,
        filename=blob.filename or "audio.ogg",
        content_type=blob.content_type or "application/octet-stream",
        duration=job.input_duration or 0.0,
    )


def stt_options(job: Job) -> SttOptions:
    """The transcription options the chat chose when the job was created."""
    if by_speech(job):  # the model's own translate task, into English
        return SttOptions(model=job.model, timestamps=True, translate=True)
    return SttOptions(
        model=job.model,
        language=str(job.options.get("language", "auto")),
        diarize=bool(job.options.get("diarize", False)),
    )


def tts_options(job: Job) -> TtsOptions:
    """The voice and speed the chat chose when the job was created."""
    return TtsOptions(
        model=job.model,
        voice=str(job.options.get("voice", "")),
        speed=float(job.options.get("speed", 1.0)),
    )


def tts_parts(job: Job) -> list[str]:
    """The texts a TTS job speaks, one provider call each (a long text was cut at intake)."""
    return [str(p) for p in job.options.get("parts", ())]


def parts_ticket(job: Job, answers: Sequence[SpeechAudio | Ticket]) -> Ticket:
    """One ticket for a TTS job whose parts' audio is partly still to fetch.

    It keeps every part, the fetched ones as bytes, so polling retries only what is missing
    and no part is synthesized twice.
    """
    entries = [part_entry(a) for a in answers]
    cost = sum(a.cost or 0.0 for a in answers if isinstance(a, Ticket)) or None
    return Ticket(provider=job.provider, data={"kind": "tts", "parts": entries}, cost=cost)
