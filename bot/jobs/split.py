"""SplitRunner: a long recording's job: split it at silences, run its parts, stitch the result."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.audio import splitting
from bot.audio.pool import AudioPool
from bot.chat.replies import INTERRUPTED_PART
from bot.config.load import JobsConfig
from bot.jobs.live import with_partial
from bot.jobs.steps import Completion, Failure, JobSteps, NextPoll
from bot.jobs.stitch import finished_text, stitch
from bot.model.errors import AudioError, ProviderError, ProviderUnavailable, RateLimited, UnknownJob
from bot.model.job import Blob, Job, JobState, NewPart, Part
from bot.model.speech import AudioInput, SttOptions, Transcript
from bot.providers.base import PollStatus, SpeechToText, SttCapabilities, Ticket
from bot.text import Msg, decode, encode, msg, text_for

_LOGGER = logging.getLogger(__name__)

MIN_PART_POLL = 2.0  # seconds between two looks at running parts (the provider may ask more)
_PART_FAILED = encode(msg("the speech service could not process it"))


def is_split(job: Job) -> bool:
    """Whether ``job`` is a long recording handled in parts (``part_seconds`` set at creation)."""
    return bool(job.options.get("part_seconds"))


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """How a recording too long or too large for its model is run: in parts of at most
    ``part_seconds`` (about ``parts`` of them), its job given ``seconds`` to finish."""

    part_seconds: float
    parts: int
    seconds: float


def split_plan(duration: float, caps: SttCapabilities, jobs: JobsConfig) -> SplitPlan:
    """The plan for ``duration`` seconds on a model with ``caps`` (intake and a link's
    download use the same rule): the deadline grows with the rounds of parts to run,
    ``jobs.part_concurrency`` at a time."""
    seconds = splitting.part_seconds(caps.max_duration_seconds, caps.max_upload_bytes)
    parts = math.ceil(duration / (seconds * 0.9))
    rounds = math.ceil(parts / jobs.part_concurrency)
    return SplitPlan(seconds, parts, jobs.deadline_seconds * max(1, rounds))


class PartStore(Protocol):
    """The parts of a split job (a long recording, a long text), changed only under the job's
    lease; each change returns False when its guard refused (nothing changed)."""

    async def store_parts(
        self, job_id: str, parts: Sequence[NewPart], *, next_poll_at: float, now: float
    ) -> bool:
        """SUBMITTING → SUBMITTED for a job just split: its parts are stored (queued, with
        their audio) and its whole input dropped in the same transaction."""
        ...

    async def of(self, job_id: str) -> list[Part]:
        """The parts of a job in order (empty when it was not split)."""
        ...

    async def load_part_input(self, job_id: str, index: int) -> Blob | None:
        """A part's audio while kept (until the provider has it)."""
        ...

    async def begin_part(self, job_id: str, index: int, now: float) -> bool:
        """Part QUEUED → SUBMITTING, recorded before its request leaves."""
        ...

    async def requeue_part(self, job_id: str, index: int, now: float) -> bool:
        """Part SUBMITTING (provably not taken), or SUBMITTED with its audio kept (a free rerun
        of a lost run) → QUEUED."""
        ...

    async def part_submitted(
        self, job_id: str, index: int, ticket: Ticket, *, now: float, keep_input: bool = False
    ) -> bool:
        """Part SUBMITTING → SUBMITTED with the provider's ticket (its data kept to poll with,
        its cost counted; the audio dropped unless ``keep_input``)."""
        ...

    async def complete_part(self, job_id: str, index: int, t: Transcript, *, now: float) -> bool:
        """Part → COMPLETED with its transcript (its cost, if any, counted): the job's cost
        becomes its parts' sum."""
        ...

    async def fail_part(self, job_id: str, index: int, error: str, *, now: float) -> bool:
        """Part (unfinished) → FAILED with the sentence the stitched result shows."""
        ...


class SplitRunner:
    """Moves a long recording's job: QUEUED → split into parts (one transaction) → SUBMITTED,
    stepped like a poll while its parts run, ``concurrency`` at a time → COMPLETED with the
    stitched transcript. Every part is a durable sub-job (``job_parts``): it is recorded
    SUBMITTING before its request leaves and its result is kept, so a restart resumes with the
    parts still to do and never pays for a finished part again."""

    def __init__(
        self,
        steps: JobSteps,
        parts: PartStore,
        stt: Mapping[str, SpeechToText],
        *,
        clock: Callable[[], float],
        audio_pool: AudioPool,
        notify: Callable[[Job | None], Awaitable[None]],
        concurrency: int = 2,
    ) -> None:
        self._steps = steps
        self._parts = parts
        self._stt = stt
        self._clock = clock
        self._audio = audio_pool
        self._notify = notify
        self._concurrency = max(1, concurrency)

    async def split(self, job: Job, now: float) -> None:
        """QUEUED → SUBMITTING → SUBMITTED with its parts stored (or FAILED: unusable audio).
        Nothing is paid here, so an interrupted split is simply done again."""
        started = await self._steps.begin_submit(job.id, now)
        if started is None:
            return
        blob = started.input  # read with the state change: no second round trip
        if blob is None:
            await self._fail(job, msg("The audio for this job is gone; please send it again."))
            return
        seconds = float(job.options["part_seconds"])
        try:
            pieces = await self._audio.run(
                splitting.split_at_silences, blob.data, job.input_duration or 0.0, seconds
            )
        except AudioError as exc:
            await self._fail(job, exc.text, "audio")
            return
        parts = [
            NewPart(p.start, p.duration, Blob(p.data, f"part-{i + 1}.ogg", "audio/ogg"))
            for i, p in enumerate(pieces)
        ]
        now = self._clock()
        if await self._parts.store_parts(job.id, parts, next_poll_at=now, now=now):
            _LOGGER.info("job %s: split into %d parts of up to %.0f s", job.id, len(parts), seconds)
            await self._notify(await self._steps.get(job.id))

    async def step(self, job: Job, now: float) -> None:
        """Settle parts a dead process left mid-submit, poll the running ones, start queued
        ones up to the concurrency bound; finish the job once every part has ended."""
        parts = await self._parts.of(job.id)
        for part in parts:
            if part.state is JobState.SUBMITTING:
                await self._interrupted(job, part)
        parts = await self._parts.of(job.id)
        shown = _finished(parts)
        running = [p for p in parts if p.state is JobState.SUBMITTED]
        free = max(0, self._concurrency - len(running))
        starting = [p for p in parts if p.state is JobState.QUEUED][:free]
        outcomes = await asyncio.gather(
            *(self._poll(job, p) for p in running),
            *(self._submit(job, p) for p in starting),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, ProviderError)]
        for other in outcomes:
            if isinstance(other, BaseException) and not isinstance(other, ProviderError):
                _LOGGER.error("job %s: a part step crashed", job.id, exc_info=other)
        if refused:  # auth, balance, bad request: every other part would be refused too
            await self._fail(job, refused[0].text, type(refused[0]).__name__)
            return
        await self._settle(job, await self._parts.of(job.id), outcomes, shown)

    async def _settle(
        self, job: Job, parts: list[Part], outcomes: Sequence[object], shown: int
    ) -> None:
        now = self._clock()
        if all(p.state.terminal for p in parts):
            await self._finish(job, parts, now)
            return
        waits = [o for o in outcomes if isinstance(o, float)]
        queued = any(p.state is JobState.QUEUED for p in parts)
        running = any(p.state is JobState.SUBMITTED for p in parts)
        delay = min(waits) if waits else (MIN_PART_POLL if running or not queued else 0.0)
        done = sum(1 for p in parts if p.state.terminal) / len(parts)
        stored = await self._steps.reschedule(job.id, NextPoll(now + delay, progress=done), now)
        # The finished parts' text, in order, whenever one more part joined it (``shown``: as
        # many before this step); the stored parts are its only source, so it survives restarts.
        partial = finished_text(parts, text_for(job.origin.locale))
        moved = round(done * len(parts)) != round((job.progress or 0.0) * len(parts))
        if moved or _finished(parts) != shown:
            await self._notify(with_partial(stored, partial))

    async def _finish(self, job: Job, parts: list[Part], now: float) -> None:
        if not any(p.state is JobState.COMPLETED for p in parts):
            error = next((p.error for p in parts if p.error), None) or _PART_FAILED
            reason = decode(error)
            await self._fail(
                job, msg("No part of the recording could be transcribed: {reason}.", reason=reason)
            )
            return
        t = stitch(parts, text_for(job.origin.locale))
        cost = sum(p.cost or 0.0 for p in parts) or None
        # A transcript with a gap is never reused for the same file sent again (the resend is
        # how the user gets the missing minutes).
        missing = sum(1 for p in parts if p.state is not JobState.COMPLETED)
        result = {**t.to_dict(), "missing_parts": missing} if missing else t.to_dict()
        await self._steps.complete(
            job.id, Completion(result, cost=cost, currency=t.currency, polled=True), now
        )
        _LOGGER.info("job %s: %d parts stitched", job.id, len(parts))

    async def _fail(self, job: Job, message: Msg, code: str = "split") -> None:
        stored = encode(message)  # each reader sees it in their language
        await self._steps.fail(job.id, Failure(stored, code, polled=True), self._clock())

    def _reruns_free(self, job: Job) -> bool:
        try:
            return self._stt[job.provider].capabilities(job.model).rerun_when_lost
        except (KeyError, ProviderError):
            return False

    async def _interrupted(self, job: Job, part: Part) -> None:
        """A part left SUBMITTING: the process sending it died (this step holds the lease now).
        Sent again only when its provider reruns for free; else a marked gap (never paid twice)."""
        now = self._clock()
        if self._reruns_free(job) and await self._parts.requeue_part(job.id, part.index, now):
            return
        _LOGGER.warning("job %s: part %d was interrupted mid-submit", job.id, part.index + 1)
        await self._parts.fail_part(job.id, part.index, INTERRUPTED_PART, now=now)

    async def _submit(self, job: Job, part: Part) -> float | None:
        """Send one part; returns a retry delay when the provider did not take it."""
        if not await self._parts.begin_part(job.id, part.index, self._clock()):
            return None
        blob = await self._parts.load_part_input(job.id, part.index)
        if blob is None:
            gone = encode(msg("its audio is gone"))
            await self._parts.fail_part(job.id, part.index, gone, now=self._clock())
            return None
        options = SttOptions(
            model=job.model,
            language=str(job.options.get("language", "auto")),
            diarize=bool(job.options.get("diarize", False)),
        )
        audio_in = AudioInput(blob.data, blob.filename or "part.ogg", "audio/ogg", part.duration)
        try:
            answer = await self._stt[job.provider].submit(audio_in, options)
        except ProviderError as exc:
            if _not_taken(exc):
                await self._parts.requeue_part(job.id, part.index, self._clock())
                return exc.retry_after or MIN_PART_POLL
            await self._parts.fail_part(job.id, part.index, encode(exc.text), now=self._clock())
            raise
        if isinstance(answer, Transcript):
            await self._complete(job, part, answer)
        else:
            keep = self._reruns_free(job)
            await self._parts.part_submitted(
                job.id, part.index, answer, now=self._clock(), keep_input=keep
            )
        return None

    async def _poll(self, job: Job, part: Part) -> float | None:
        """Ask about one running part; returns a delay when the provider asked to wait."""
        ticket = Ticket(provider=job.provider, data=part.ticket or {})
        try:
            result = await self._stt[job.provider].poll(ticket)
        except UnknownJob:
            if self._reruns_free(job):  # a local run lost to a restart: run it again
                await self._parts.requeue_part(job.id, part.index, self._clock())
                return 0.0
            raise
        except ProviderError as exc:
            if exc.retryable:
                return exc.retry_after or MIN_PART_POLL
            raise
        if result.status is PollStatus.COMPLETED and result.transcript is not None:
            await self._complete(job, part, result.transcript)
        elif result.status is PollStatus.FAILED:
            error = result.error or _PART_FAILED
            await self._parts.fail_part(job.id, part.index, error, now=self._clock())
        return None

    async def _complete(self, job: Job, part: Part, t: Transcript) -> None:
        await self._parts.complete_part(job.id, part.index, t, now=self._clock())


def _finished(parts: Sequence[Part]) -> int:
    """How many parts in a row, from the first, have ended (what the partial text shows)."""
    return next((i for i, p in enumerate(parts) if not p.state.terminal), len(parts))


def _not_taken(exc: ProviderError) -> bool:
    """As the worker's rule: resend only what the provider provably did not take."""
    if isinstance(exc, RateLimited):
        return True
    return isinstance(exc, ProviderUnavailable) and (exc.status == 503 or not exc.request_sent)
