"""Provider roles: SpeechToText and TextToSpeech, their declared capabilities and poll results."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from bot.model.errors import PayloadTooLarge
from bot.model.speech import AudioInput, SpeechAudio, SttOptions, Transcript, TtsOptions


class PollStatus(StrEnum):
    """Where a provider says an asynchronous job is."""

    PENDING = "pending"
    """Accepted, waiting in the provider's queue."""
    RUNNING = "running"
    """Being processed right now."""
    COMPLETED = "completed"
    """Finished; the result is attached."""
    FAILED = "failed"
    """Finished without a result; the error is attached."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """A provider's receipt for an asynchronous job.

    ``data`` holds every field the vendor's docs say to echo back when polling (runId, cost,
    paymentSource, ...). It must be JSON-serialisable: the job store persists it so a restart can
    keep polling without paying again.
    """

    provider: str
    data: Mapping[str, Any]
    cost: float | None = None
    queue_position: int | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    """One answer to ``poll``; exactly one of transcript/audio is set when COMPLETED."""

    status: PollStatus
    transcript: Transcript | None = None
    audio: SpeechAudio | None = None
    error: str | None = None
    error_code: str | None = None
    queue_position: int | None = None
    cost: float | None = None
    progress: float | None = None
    """Share of the work done (0-1) while RUNNING, when the provider measures it."""
    audio_parts: tuple[SpeechAudio, ...] = ()
    """COMPLETED speech in several parts (joined in this order); ``audio`` is then None."""
    partial: str | None = None
    """While RUNNING, the text of the segments finished so far (a prefix of the final text:
    never a segment still being decoded); None when the provider streams nothing."""


def in_progress(status: object) -> PollResult | None:
    """The result for a vendor's ``pending`` or ``processing`` status; None for any other."""
    if status == "pending":
        return PollResult(PollStatus.PENDING)
    if status == "processing":
        return PollResult(PollStatus.RUNNING)
    return None


def refuse_oversize(provider: str, audio: AudioInput, limit: int) -> None:
    """Raise before sending anything when ``audio`` is over the provider's upload ``limit``.

    Raises:
        PayloadTooLarge: ``audio`` has more than ``limit`` bytes (``request_sent`` False).
    """
    if len(audio.data) > limit:
        raise PayloadTooLarge(
            f"{provider}: {len(audio.data)} bytes > the {limit}-byte upload limit",
            provider=provider,
            request_sent=False,
        )


@dataclass(frozen=True, slots=True)
class SttCapabilities:
    """What a speech-to-text model can do, checked before a job is created."""

    asynchronous: bool
    diarization: bool
    timestamps: bool
    formats: frozenset[str]
    """Container/extension names accepted for direct upload (e.g. ``ogg``, ``mp3``, ``wav``)."""
    max_upload_bytes: int
    min_poll_interval: float = 0.0
    """Seconds; never poll faster than this."""
    max_processing_seconds: float = 1800.0
    """A job processing longer than this is considered stuck."""
    max_duration_seconds: float | None = None
    rerun_when_lost: bool = False
    """Running a job again costs nothing (a local engine): a run lost to a crash or restart is
    simply started again from the kept input instead of failing as "may have been charged"."""
    languages: frozenset[str] = frozenset()
    """Language codes the model transcribes (``/language`` checks them); empty: not declared."""
    translates_to_english: bool = False
    """The model itself turns speech in any language into English text (Whisper's ``translate``
    task, asked with :attr:`bot.model.speech.SttOptions.translate`)."""
    keep_audio_seconds: float = 0.0
    """How long a recording is kept after it was sent, so that a translation into English can
    be made from the audio later (0: not kept, no such translation offered)."""


@dataclass(frozen=True, slots=True)
class TtsCapabilities:
    """What a text-to-speech model can do."""

    asynchronous: bool
    max_chars: int
    min_poll_interval: float = 0.0
    voices: frozenset[str] = field(default_factory=frozenset)
    """Known voice names; empty means "not enumerated, pass through"."""
    rerun_when_lost: bool = False
    """As :attr:`SttCapabilities.rerun_when_lost`."""
    voice_files: str | None = None
    """The suffix of a voice file this engine also takes by its path (Piper: ``.onnx``); only
    the operator can give one (config, CLI): a chat's voice name never holds a ``/``."""

    def has_voice(self, voice: str) -> bool:
        """Whether ``voice`` is one of :attr:`voices` (or they are not enumerated), or the path
        of a voice file (checked by the engine when it loads it)."""
        if not self.voices or voice in self.voices:
            return True
        is_path = "/" in voice or os.sep in voice
        return self.voice_files is not None and is_path and voice.endswith(self.voice_files)


class SpeechToText(Protocol):
    """A hosted speech-to-text API."""

    name: str

    def capabilities(self, model: str) -> SttCapabilities:
        """Return what ``model`` supports.

        Raises:
            ProviderBadRequest: the model is unknown to this provider.
        """
        ...

    async def submit(self, audio: AudioInput, options: SttOptions) -> Transcript | Ticket:
        """Send audio for transcription.

        Returns:
            The transcript for synchronous models, or a ticket to poll.

        Raises:
            ProviderError: a typed subclass for every HTTP failure.
        """
        ...

    async def poll(self, ticket: Ticket) -> PollResult:
        """Ask where an asynchronous job is.

        Raises:
            ProviderError: a typed subclass for every HTTP failure.
        """
        ...


class TextToSpeech(Protocol):
    """A hosted text-to-speech API."""

    name: str

    def capabilities(self, model: str) -> TtsCapabilities:
        """Return what ``model`` supports."""
        ...

    async def submit(self, text: str, options: TtsOptions) -> SpeechAudio | Ticket:
        """Ask for speech.

        Returns:
            The audio for synchronous models (downloaded if the API answered with a URL), or a
            ticket to poll: asynchronous runs, and synthesized audio whose download failed
            (polling that ticket retries the download, never the paid synthesis).

        Raises:
            ProviderError: a typed subclass for every HTTP failure.
        """
        ...

    async def poll(self, ticket: Ticket) -> PollResult:
        """Ask where an asynchronous synthesis is; COMPLETED carries the downloaded audio."""
        ...
