"""Answers already paid for: a finished transcript of the same file, or a voice clip of the
same text, voice, model, speed and provider, stored again as a new job at no cost."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from bot.model.job import Job, JobKind, JobState, NewJob
from bot.service.desk import JobDesk

_LOGGER = logging.getLogger(__name__)

REUSED_FROM = "reused_from"
"""The option naming the job whose answer (transcript, or the clip beside it) a job reuses."""


def speech_key(
    platform: str, provider: str, model: str, voice: str, speed: float, text: str
) -> str:
    """One hash per clip worth keeping: the same text said by the same voice, model, speed and
    provider instance. Per platform, as a Telegram ``file_id`` is only valid for this bot."""
    raw = "\x1f".join(map(str, ("tts", platform, provider, model, voice, speed, text)))
    return hashlib.sha256(raw.encode()).hexdigest()


def _kept_until(job: Job) -> dict[str, object]:
    """``keep_audio_until`` of a job whose recording is kept for Translate → English (see
    :mod:`bot.service.text_jobs`), else nothing."""
    until = job.options.get("keep_audio_until")
    return {"keep_audio_until": until} if until else {}


async def _original(desk: JobDesk, found: Job) -> Job | None:
    """The job that holds what ``found`` reuses: itself, or the one it reused in turn (still
    stored: a purged or forgotten one takes its clip and recording with it)."""
    source = found.options.get(REUSED_FROM)
    return found if not source else await desk.store.get(str(source))


async def reuse(
    desk: JobDesk, new: NewJob, key: str, now: float, *, carry: tuple[str, ...] = ()
) -> Job | None:
    """The finished answer of a job with the same dedup ``key``, stored as ``new`` (under its
    id), COMPLETED at no cost and marked ``reused_from`` the job that holds the transcript's
    recording or the clip's audio; None when there is none to reuse. ``carry``: options of the
    reused job the new one takes too (a link's, so its reply names the source)."""
    found = await desk.store.find_reusable(key)
    if found is None or found.result is None or found.result.get("missing_parts"):
        return None
    previous = await _original(desk, found)
    if previous is None:
        if new.kind is JobKind.TTS:
            return None  # its clip went with it: synthesized anew
        previous = found  # a transcript is in the result itself
    what = "clip" if new.kind is JobKind.TTS else "transcript"
    _LOGGER.info("reusing the %s of job %s (same input and options)", what, previous.id)
    job = await desk.store.create(
        replace(
            new,
            provider=previous.provider,
            model=previous.model,
            # The recording or clip stays with the original (Translate → English and the
            # delivery find it there).
            options={
                **new.options,
                **{name: found.options[name] for name in carry if name in found.options},
                REUSED_FROM: previous.id,
                **_kept_until(previous),
            },
            deadline_at=now,
            input_duration=previous.input_duration,
        ),
        now=now,
        state=JobState.COMPLETED,
        result={**found.result, "cost": 0.0},
    )
    desk.wake()
    return job
