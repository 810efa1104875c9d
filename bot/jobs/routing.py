"""JobProviders: the configured provider instances by name, and what a job's provider declares."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.jobs.links import pending_download
from bot.jobs.speech_translate import by_speech
from bot.jobs.split import is_split
from bot.model.errors import ProviderError
from bot.model.job import Job, JobKind
from bot.providers.base import SpeechToText, SttCapabilities, TextToSpeech, TtsCapabilities

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobProviders:
    """The speech-to-text and text-to-speech instances of the config, looked up per job."""

    stt: Mapping[str, SpeechToText]
    tts: Mapping[str, TextToSpeech]

    def for_job(self, job: Job) -> SpeechToText | TextToSpeech:
        """The instance named in ``job`` (speech in, a translation included, unless it is TTS)."""
        return self.tts[job.provider] if job.kind is JobKind.TTS else self.stt[job.provider]

    def capabilities(self, job: Job) -> SttCapabilities | TtsCapabilities:
        """What ``job``'s provider declares for its model."""
        return self.for_job(job).capabilities(job.model)

    def gone(self, job: Job) -> bool:
        """Whether the provider instance named in the job left the config since it was created
        (renamed or removed: its jobs can be neither sent nor polled)."""
        return job.provider not in (self.tts if job.kind is JobKind.TTS else self.stt)

    def min_interval(self, job: Job) -> float:
        """The shortest wait between two polls that ``job``'s provider accepts."""
        return self.capabilities(job).min_poll_interval

    def reruns_free(self, job: Job) -> bool:
        """Whether ``job``'s provider declares that running it again costs nothing (splitting a
        long recording pays nothing: its parts are paid, and settled, one by one; nor does
        downloading a link)."""
        if is_split(job) or pending_download(job):
            return True
        if job.kind is JobKind.TEXT and not by_speech(job):  # a chat request may be charged
            return False
        try:
            return self.capabilities(job).rerun_when_lost
        except (KeyError, ProviderError):  # provider gone from the config: treat as paid
            return False

    def stuck(self, job: Job, now: float) -> bool:
        """Whether a submitted transcription has run past its provider's processing limit."""
        if job.kind is not JobKind.STT or job.submitted_at is None:
            return False
        limit = self.stt[job.provider].capabilities(job.model).max_processing_seconds
        return now - job.submitted_at > limit
