"""Translations into English made by the speech model's own translate task (Whisper's
``task="translate"``) from the recording kept with the transcript.

Such a job is a TEXT job (what it makes is text) that the worker runs as one more speech call:
the kept recording goes to the model with :attr:`bot.model.speech.SttOptions.translate`, then it is
polled, shown, completed and replied to as a transcription is (see :class:`JobWorker`). A local
run lost to a restart is run again for free, as a local transcription is."""

from __future__ import annotations

from bot.model.job import Job, JobKind
from bot.model.speech import Transcript

RECORDING = "recording"
"""The blob role of a recording kept with its transcript (``input`` is dropped once the provider
has it): see :meth:`bot.storage.kept.KeptAudio.keep_recording`."""
SPEECH = "speech"
"""``options["engine"]`` of a TEXT job its speech model makes (else: the chat model)."""


def by_speech(job: Job) -> bool:
    """Whether ``job`` is a translation its speech model makes from the audio."""
    return job.kind is JobKind.TEXT and job.options.get("engine") == SPEECH


def in_english(t: Transcript) -> Transcript:
    """What the translate task gave, as the English text of the job (its timings kept, so a
    long one gets its ``.srt``)."""
    return Transcript(
        text=t.text, segments=t.segments, language="en", duration=t.duration, cost=t.cost
    )
