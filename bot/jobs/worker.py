"""JobWorker: moves a job one step (submit, poll, deliver) and records the outcome in the store."""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Callable, Mapping

from bot.audio import codec as audio
from bot.audio.pool import AudioPool
from bot.chat import replies
from bot.jobs import calls
from bot.jobs.delivery import Deliverer, Delivery
from bot.jobs.links import LinkRunner, pending_download
from bot.jobs.live import with_partial
from bot.jobs.metrics import Metrics
from bot.jobs.outcomes import (
    deadline_message,
    log_provider_failure,
    poll_parts,
    progress_step,
    retry_note,
    retry_submit,
    stuck_message,
)
from bot.jobs.routing import JobProviders
from bot.jobs.schedule import BackoffSchedule, PollSchedule
from bot.jobs.speech_translate import by_speech, in_english
from bot.jobs.split import PartStore, SplitRunner, is_split
from bot.jobs.steps import Completion, Failure, JobSteps, NextPoll, Recovery, Submission
from bot.jobs.text import TextRunner
from bot.model.errors import AudioError, ProviderError, ProviderUnreachable, UnknownJob
from bot.model.job import REPLY_STATES, Blob, Job, JobKind, JobState
from bot.model.speech import SpeechAudio, Transcript, VoiceClip
from bot.providers.base import PollResult, PollStatus, SpeechToText, TextToSpeech, Ticket
from bot.providers.chat import TextGenerator
from bot.text import encode, msg

_LOGGER = logging.getLogger(__name__)

INTERRUPTED_MESSAGE = msg(
    "This job was interrupted while it was being sent to the speech service, so it may or may not "
    "have been charged. It was not resent automatically; please send it again to retry."
).id
_UNREADABLE = msg("The speech service gave an answer I could not understand.")


class JobWorker:
    """Advances jobs through their states with the providers and hands results to deliverers."""

    def __init__(
        self,
        steps: JobSteps,
        *,
        parts: PartStore,
        delivery: Delivery,
        recovery: Recovery,
        stt: Mapping[str, SpeechToText],
        tts: Mapping[str, TextToSpeech],
        clock: Callable[[], float],
        schedule: PollSchedule | None = None,
        audio_pool: AudioPool | None = None,
        part_concurrency: int = 2,
        llm: TextGenerator | None = None,
        max_input_tokens: int = 8000,
        metrics: Metrics | None = None,
        links: LinkRunner | None = None,
    ) -> None:
        self._steps = steps
        self._links = links  # a link's job downloads its audio first
        self.metrics = metrics or Metrics()
        # The platforms: progress, replies and their retries.
        self.delivery = delivery
        self._recovery = recovery
        self._audio = audio_pool or AudioPool()
        self._split = SplitRunner(
            steps,
            parts,
            stt,
            clock=clock,
            audio_pool=self._audio,
            notify=self.delivery.notify,
            concurrency=part_concurrency,
        )
        self._text = TextRunner(
            steps,
            parts,
            llm,
            clock=clock,
            max_input_tokens=max_input_tokens,
            concurrency=part_concurrency,
        )
        self._providers = JobProviders(stt, tts)
        self._clock = clock
        self.schedule: PollSchedule = schedule or BackoffSchedule()

    def register(self, platform: str, deliverer: Deliverer) -> None:
        """Route finished jobs of ``platform`` to ``deliverer`` (see :class:`Delivery`)."""
        self.delivery.register(platform, deliverer)

    def set_online(self, platform: str, online: bool) -> None:
        """Whether ``platform``'s connection is up (see :meth:`Delivery.set_online`)."""
        self.delivery.set_online(platform, online)

    @property
    def deliverers(self) -> Mapping[str, Deliverer]:
        """The registered platforms."""
        return self.delivery.deliverers

    @property
    def offline(self) -> set[str]:
        """The registered platforms whose connection is down."""
        return self.delivery.offline

    async def recover(self, now: float) -> list[str]:
        """Settle the jobs of the registered platforms that a crashed process left ambiguous
        (mid-submit, its lease expired; see README, crash safety): a free rerun goes back to the
        queue, anything else fails. Run at start, after registering deliverers, and then
        periodically by the poller: another process may die."""
        ids = await self._recovery.recover_interrupted(
            now, INTERRUPTED_MESSAGE, self.deliverers, rerun=self._providers.reruns_free
        )
        if ids:
            _LOGGER.warning("%d job(s) were interrupted mid-submit: %s", len(ids), ", ".join(ids))
        return ids

    async def advance(self, job: Job, now: float) -> None:
        """Do the one step that is due for ``job`` (a current snapshot: see :class:`Poller`)."""
        try:
            if job.state is JobState.QUEUED:
                await self.submit(job, now)
            elif job.state is JobState.SUBMITTED:
                await self.poll(job, now)
            elif job.state in REPLY_STATES and not job.delivered:
                await self.delivery.deliver(job, now)
        except Exception:
            _LOGGER.exception("job %s: unexpected error in state %s", job.id, job.state)
            if job.state is JobState.SUBMITTED:
                await self._steps.reschedule(job.id, NextPoll(self._clock() + 5.0), self._clock())

    async def _unavailable(self, job: Job, now: float) -> None:
        """Fail a job whose provider is gone with a sentence that says so, at once, rather than
        let it fail on every claim until its deadline."""
        _LOGGER.warning(
            "job %s: provider %r is no longer configured; the job fails", job.id, job.provider
        )
        if by_speech(job):  # a translation's model: gone since its button was pressed
            reason, code = encode(replies.TEXT_UNAVAILABLE), "text"
        else:
            reason, code = replies.provider_gone_text(job.provider), "provider_gone"
        await self._steps.fail(
            job.id, Failure(reason, code, polled=job.state is JobState.SUBMITTED), now
        )

    # -- submit -----------------------------------------------------------------------------

    async def submit(self, job: Job, now: float) -> None:
        """QUEUED → SUBMITTING → SUBMITTED / COMPLETED / FAILED (or back to QUEUED if unsent)."""
        if now >= job.deadline_at:
            await self._steps.fail(job.id, Failure(deadline_message(job), "deadline"), now)
            return
        if is_split(job):
            await self._split.split(job, now)
            return
        if job.kind is JobKind.TEXT and not by_speech(job):
            await self._text.submit(job, now)
            return
        if self._providers.gone(job):
            await self._unavailable(job, now)
            return
        if self._links is not None and pending_download(job):
            await self._links.download(job, now)
            return
        started = await self._steps.begin_submit(job.id, now)
        if started is None:
            return  # someone else moved it; the guard keeps us honest
        try:
            with self.metrics.provider_call(job, "submit"):
                if job.kind is not JobKind.TTS:  # speech in; a translation is one too
                    stt = await self._submit_stt(job, started.input)
                    answer: Transcript | Ticket | VoiceClip = stt
                else:
                    answer = await self._submit_tts(job)
        except ProviderError as exc:
            await self._submit_failed(job, exc)
            return
        except AudioError as exc:
            await self._steps.fail(job.id, Failure(encode(exc.text), "audio"), self._clock())
            return
        except Exception:
            _LOGGER.exception("job %s: submit crashed", job.id)
            await self._steps.fail(job.id, Failure(encode(_UNREADABLE), "internal"), self._clock())
            return
        await self._record_answer(job, answer)

    async def _submit_stt(self, job: Job, blob: Blob | None) -> Transcript | Ticket:
        audio_in = calls.audio_input(job, blob)
        return await self._providers.stt[job.provider].submit(audio_in, calls.stt_options(job))

    async def _submit_tts(self, job: Job) -> Ticket | VoiceClip:
        provider, options = self._providers.tts[job.provider], calls.tts_options(job)
        answers = [await provider.submit(part, options) for part in calls.tts_parts(job)]
        audios = [a for a in answers if isinstance(a, SpeechAudio)]
        if len(audios) == len(answers):
            return await self._audio.run(audio.to_voice_clip, [a.data for a in audios])
        if len(answers) == 1 and isinstance(answers[0], Ticket):
            return answers[0]
        return calls.parts_ticket(job, answers)

    async def _record_answer(self, job: Job, answer: Transcript | Ticket | VoiceClip) -> None:
        now = self._clock()
        if isinstance(answer, Transcript):
            await self._complete_transcript(job, answer, now, polled=False)
        elif isinstance(answer, VoiceClip):
            await self._complete_clip(job, answer, now, polled=False)
        else:
            # The schedule sees the job as it is about to be stored: submitted now, with the
            # queue position the provider just gave.
            submitted = dataclasses.replace(
                job, submitted_at=now, updated_at=now, queue_position=answer.queue_position
            )
            delay = self.schedule.first_poll(submitted, self._providers.min_interval(job))
            stored = await self._steps.mark_submitted(
                job.id,
                Submission(
                    dict(answer.data),
                    next_poll_at=now + delay,
                    cost=answer.cost,
                    queue_position=answer.queue_position,
                    keep_input=self._providers.reruns_free(job),
                ),
                now,
            )
            await self.delivery.notify(stored)

    async def _complete_transcript(
        self, job: Job, t: Transcript, now: float, *, polled: bool
    ) -> None:
        if by_speech(job):
            t = in_english(t)
            _LOGGER.info("job %s: translated into English by %s", job.id, job.provider)
        stored = await self._steps.complete(
            job.id,
            Completion(
                t.to_dict(),
                cost=t.cost,
                currency=t.currency,
                polled=polled,
                hold_until=self.delivery.hold(job),
            ),
            now,
        )
        await self.delivery.reply(stored)

    async def _complete_clip(self, job: Job, clip: VoiceClip, now: float, *, polled: bool) -> None:
        result = {"duration": clip.duration, "waveform": base64.b64encode(clip.waveform).decode()}
        stored = await self._steps.complete(
            job.id,
            Completion(
                result,
                output_blob=Blob(clip.ogg, "voice.ogg", "audio/ogg"),
                polled=polled,
                hold_until=self.delivery.hold(job),
            ),
            now,
        )
        await self.delivery.reply(stored, clip)

    async def _submit_failed(self, job: Job, exc: ProviderError) -> None:
        now = self._clock()
        delay = self.schedule.next_poll(job, 0.0, exc.retry_after)
        if retry_submit(exc) and now + delay < job.deadline_at:
            _LOGGER.info(
                "job %s: provider did not take it (%s); retry in %.1fs", job.id, exc, delay
            )
            requeued = await self._steps.requeue(job.id, now + delay, now)
            if requeued is not None:
                await self.delivery.notify(
                    requeued, retry_note(exc, job.attempts + 1, delay, sent=False)
                )
            return
        log_provider_failure(job, exc)
        await self._steps.fail(job.id, Failure(encode(exc.text), type(exc).__name__), now)

    # -- poll -------------------------------------------------------------------------------

    async def poll(self, job: Job, now: float) -> None:
        """Ask the provider about a SUBMITTED job and record what it said."""
        if now >= job.deadline_at:
            await self._steps.fail(
                job.id, Failure(deadline_message(job), "deadline", polled=False), now
            )
            return
        if is_split(job):
            await self._split.step(job, now)
            return
        if job.kind is JobKind.TEXT and not by_speech(job):
            await self._text.step(job, now)
            return
        if self._providers.gone(job):
            await self._unavailable(job, now)
            return
        provider = self._providers.for_job(job)
        ticket = Ticket(provider=job.provider, data=job.ticket or {})
        try:
            with self.metrics.provider_call(job, "poll"):
                if isinstance(ticket.data.get("parts"), list):
                    result = await poll_parts(provider, ticket)
                else:
                    result = await provider.poll(ticket)
        except ProviderError as exc:
            await self._poll_failed(job, exc)
            return
        await self._record_poll(job, result)

    async def _poll_failed(self, job: Job, exc: ProviderError) -> None:
        now = self._clock()
        # A run lost to a restart (a local engine): running it again costs nothing.
        lost = isinstance(exc, UnknownJob) and self._providers.reruns_free(job)
        requeued = await self._steps.requeue_lost(job.id, now) if lost else None
        if requeued is not None:
            _LOGGER.info(
                "job %s: %s lost the run (%s); running it again", job.id, job.provider, exc
            )
            await self.delivery.notify(requeued)
            return
        if exc.retryable:
            delay = self.schedule.next_poll(job, self._providers.min_interval(job), exc.retry_after)
            _LOGGER.info("job %s: poll failed (%s); next poll in %.1fs", job.id, exc, delay)
            moved = await self._steps.reschedule(
                job.id, NextPoll(now + delay, queue_position=job.queue_position), now
            )
            if moved is not None and isinstance(exc, ProviderUnreachable):
                note = retry_note(exc, job.poll_count + 1, delay, sent=True)
                await self.delivery.notify(moved, note)
            return
        log_provider_failure(job, exc)
        await self._steps.fail(
            job.id, Failure(encode(exc.text), type(exc).__name__, polled=True), now
        )

    async def _record_poll(self, job: Job, result: PollResult) -> None:
        now = self._clock()
        if result.status is PollStatus.COMPLETED:
            await self.schedule.observe(job, now)
            self.metrics.job_completed(job)
            if result.transcript is not None:
                await self._complete_transcript(job, result.transcript, now, polled=True)
            elif result.audio is not None or result.audio_parts:
                parts = result.audio_parts or (result.audio,)
                try:
                    clip = await self._audio.run(
                        audio.to_voice_clip, [a.data for a in parts if a is not None]
                    )
                except AudioError as exc:
                    await self._steps.fail(job.id, Failure(encode(exc.text), "audio"), now)
                    return
                await self._complete_clip(job, clip, now, polled=True)
            return
        if result.status is PollStatus.FAILED:
            await self._steps.fail(
                job.id,
                Failure(
                    result.error or encode(msg("The speech service could not process this job.")),
                    result.error_code or "provider_failed",
                    polled=True,
                ),
                now,
            )
            return
        if self._providers.stuck(job, now):
            await self._steps.fail(job.id, Failure(stuck_message(job), "stuck"), now)
            return
        self.schedule.observe_queue(job, result.queue_position, now)
        # Scheduled from what this answer said (queue position as of now), not the last one.
        answered = dataclasses.replace(job, queue_position=result.queue_position, updated_at=now)
        delay = self.schedule.next_poll(answered, self._providers.min_interval(job), None)
        stored = await self._steps.reschedule(
            job.id,
            NextPoll(now + delay, result.queue_position, result.progress),
            now,
        )
        # Partial text goes with every poll that has some: the adapter drops what its edit
        # budget (or the same text again) does not allow.
        if (
            result.queue_position != job.queue_position
            or progress_step(job, result)
            or result.partial
        ):
            await self.delivery.notify(with_partial(stored, result.partial))
