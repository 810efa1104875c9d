"""SpeechTranslateRunner: a translation into English made by the speech model's own translate
task (Whisper's ``task="translate"``) from the recording kept with the transcript."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from bot.errors import ProviderError, ProviderUnavailable, RateLimited, UnknownJob
from bot.jobs.models import Blob, Job
from bot.models import AudioInput, SttOptions, Transcript
from bot.ports import JobStore
from bot.providers.base import PollStatus, SpeechToText, Ticket
from bot.replies import TEXT_UNAVAILABLE
from bot.text import Msg, encode, msg

_LOGGER = logging.getLogger(__name__)

RECORDING = "recording"
"""The blob role of a recording kept with its transcript (``input`` is dropped once the provider
has it): see :meth:`bot.ports.JobStore.keep_recording`."""
SPEECH = "speech"
"""``options["engine"]`` of a TEXT job its speech model makes (else: the chat model)."""
_GONE = msg("The audio for this job is gone; please send it again.")
_FAILED = msg("The speech service could not process this job.")
_POLL = 1.0  # seconds between two looks at a run (at least the provider's own minimum)


def by_speech(job: Job) -> bool:
    """Whether ``job`` is a translation its speech model makes from the audio."""
    return job.options.get("engine") == SPEECH


class SpeechTranslateRunner:
    """Moves a TEXT job translated by a speech model: QUEUED → the kept recording sent with the
    translate task (SUBMITTING, then SUBMITTED with its ticket) → polled, its progress shown →
    COMPLETED with the English text and its timings (so a long one gets its ``.srt``). The job
    holds the recording as its input while it runs: a local run lost to a restart is simply run
    again (free), as a local transcription is."""

    def __init__(
        self,
        store: JobStore,
        stt: Mapping[str, SpeechToText],
        *,
        clock: Callable[[], float],
        notify: Callable[[Job | None], Awaitable[None]],
    ) -> None:
        self._store = store
        self._stt = stt
        self._clock = clock
        self._notify = notify

    def reruns_free(self, job: Job) -> bool:
        """Whether running ``job`` again costs nothing (its provider says so)."""
        provider = self._stt.get(job.provider)
        try:
            return provider is not None and provider.capabilities(job.model).rerun_when_lost
        except ProviderError:
            return False

    async def submit(self, job: Job, now: float) -> None:
        """QUEUED → SUBMITTING → SUBMITTED (or COMPLETED from a synchronous model)."""
        started = await self._store.begin_submit(job.id, now)
        if started is None:
            return
        provider = self._stt.get(job.provider)
        if provider is None:  # gone from the config since the button was pressed
            await self._fail(job, TEXT_UNAVAILABLE)
            return
        if started.input is None:
            await self._fail(job, _GONE)
            return
        try:
            interval = max(_POLL, provider.capabilities(job.model).min_poll_interval)
            answer = await provider.submit(_audio(started.input, job), _options(job))
        except ProviderError as exc:
            await self._submit_failed(job, exc)
            return
        if isinstance(answer, Transcript):
            await self._complete(job, answer)
            return
        now = self._clock()
        stored = await self._store.mark_submitted(
            job.id,
            dict(answer.data),
            next_poll_at=now + interval,
            now=now,
            cost=answer.cost,
            queue_position=answer.queue_position,
            keep_input=self.reruns_free(job),
        )
        await self._notify(stored)

    async def step(self, job: Job, now: float) -> None:
        """Ask where the run is; record its progress, its result or its failure."""
        provider = self._stt.get(job.provider)
        if provider is None:
            await self._fail(job, TEXT_UNAVAILABLE)
            return
        try:
            result = await provider.poll(Ticket(provider=job.provider, data=job.ticket or {}))
        except UnknownJob as exc:  # a local run lost to a restart: run it again, for free
            requeued = await self._store.requeue_lost(job.id, self._clock())
            if requeued is not None:
                _LOGGER.info("job %s: the translation run was lost; running it again", job.id)
                await self._notify(requeued)
                return
            await self._fail(job, exc.text)
            return
        except ProviderError as exc:
            if not exc.retryable:
                await self._fail(job, exc.text)
                return
            result = None
        if result is not None and result.status is PollStatus.COMPLETED and result.transcript:
            await self._complete(job, result.transcript)
        elif result is not None and result.status is PollStatus.FAILED:
            await self._failed(job, result.error or encode(_FAILED))
        else:
            await self._running(job, result.progress if result else None)

    async def _running(self, job: Job, progress: float | None) -> None:
        now = self._clock()
        stored = await self._store.reschedule(
            job.id, next_poll_at=now + _POLL, now=now, progress=progress
        )
        before = -1 if job.progress is None else int(job.progress * 10)
        if progress is not None and int(progress * 10) != before:  # 10 % steps: chat API calls
            await self._notify(stored)

    async def _submit_failed(self, job: Job, exc: ProviderError) -> None:
        now = self._clock()
        # As the worker's rule: resend only what the provider provably did not take.
        not_taken = isinstance(exc, RateLimited) or (
            isinstance(exc, ProviderUnavailable) and (exc.status == 503 or not exc.request_sent)
        )
        if not_taken and now + (exc.retry_after or 5.0) < job.deadline_at:
            await self._store.requeue(job.id, now + (exc.retry_after or 5.0), now)
            return
        _LOGGER.warning("job %s: the speech model refused the translation: %s", job.id, exc)
        await self._fail(job, exc.text)

    async def _complete(self, job: Job, t: Transcript) -> None:
        english = Transcript(
            text=t.text, segments=t.segments, language="en", duration=t.duration, cost=t.cost
        )
        await self._store.complete(
            job.id, english.to_dict(), now=self._clock(), cost=t.cost, polled=True
        )
        _LOGGER.info("job %s: translated into English by %s", job.id, job.provider)

    async def _fail(self, job: Job, message: Msg) -> None:
        await self._failed(job, encode(message))  # each reader sees it in their language

    async def _failed(self, job: Job, stored: str) -> None:
        await self._store.fail(job.id, stored, now=self._clock(), error_code="text", polled=True)


def _audio(blob: Blob, job: Job) -> AudioInput:
    return AudioInput(
        blob.data,
        blob.filename or "audio.ogg",
        blob.content_type or "application/octet-stream",
        job.input_duration or 0.0,
    )


def _options(job: Job) -> SttOptions:
    return SttOptions(model=job.model, language="auto", timestamps=True, translate=True)
