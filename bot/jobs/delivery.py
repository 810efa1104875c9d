"""Delivery: the platform half of the worker — progress shown, replies sent under the lease the
step kept (or claimed), failed sends retried with backoff.

An adapter gets everything a reply needs in one :class:`Reply`: the job, its clip, the text
buttons the core offers under it, and a ``checkpoint`` that records how far a multi-message
send got (so a retried delivery resumes instead of re-sending); it never calls back into the
service."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bot.chat import replies
from bot.jobs.metrics import Metrics
from bot.model.errors import DeliveryError
from bot.model.job import REPLY_STATES, Blob, Job, JobKind, JobState
from bot.model.speech import VoiceClip

_LOGGER = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = 12
DEFAULT_LEASE = 15.0  # seconds a claimed step is leased for (Poller's default)


class Checkpoint(Protocol):
    """Records progress of a multi-message delivery in the job's ``extra``."""

    async def __call__(self, **changes: object) -> Job:
        """Merge ``changes`` into the job's ``extra`` (stored at once).

        Returns:
            The job with the merged ``extra``.
        """
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """What an adapter is handed to answer a finished job."""

    job: Job
    clip: VoiceClip | None
    """The synthesised voice of a completed speech job (None otherwise, or if lost)."""
    buttons: tuple[str, ...]
    """The text buttons to show under a transcript (``summary``, ``translate``, ``english``)."""
    checkpoint: Checkpoint
    """Call after each message of a multi-message reply; ``job.extra`` says what a previous,
    interrupted attempt already sent."""
    clip_notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """For a clip reused from an earlier job (``options["reused_from"]``): that job's adapter
    notes, which may say where the platform already keeps the clip (sent again, not uploaded)."""


class Deliverer(Protocol):
    """What an adapter offers the core to put results back into a chat."""

    async def deliver(self, reply: Reply) -> str | None:
        """Send the final reply (transcript, voice clip or failure) for a finished job.

        Args:
            reply: the job, its clip, its buttons, and where to record partial progress.

        Returns:
            The platform's id of the (first) reply message, recorded with the delivery.

        Raises:
            DeliveryError: the platform refused; ``permanent`` stops retries.
        """
        ...

    async def progress(self, job: Job) -> None:
        """Show that a job moved (e.g. edit the placeholder); best effort, errors are logged."""
        ...


class ReplyMarks(Protocol):
    """What happened to a finished job's reply; each mark ends the step's lease and is refused
    (False) unless this owner holds the job's lease, or nobody does."""

    owner: str
    """This process's lease owner id."""

    async def mark_delivered(self, job_id: str, message_id: str | None, now: float) -> bool:
        """Record that the platform accepted the reply (once: later calls return False)."""
        ...

    async def defer_delivery(self, job_id: str, deliver_after: float, now: float) -> bool:
        """Try delivering again later (platform rate limit or outage)."""
        ...

    async def mark_undeliverable(self, job_id: str, reason: str, now: float) -> bool:
        """Give up delivering (bot blocked, chat gone): never retried again."""
        ...


class Notes(Protocol):
    """The adapter's notes kept with a job (what a delivery already sent)."""

    async def get(self, job_id: str) -> Job | None:
        """The job with this id (whose notes a reused clip reads), or None."""
        ...

    async def update_extra(self, job_id: str, extra: Mapping[str, Any], now: float) -> bool:
        """Replace the job's ``extra``; False when the job is gone."""
        ...


class Blobs(Protocol):
    """The audio kept beside a job."""

    async def load_blob(self, job_id: str, role: str) -> Blob | None:
        """The ``input``, ``output`` or ``recording`` audio of a job, if still kept."""
        ...


class Delivery:
    """The registered platforms, which of them are offline, and how a finished job reaches its
    chat: at once by the step that finished it (under its kept lease), or by a later claim."""

    def __init__(
        self,
        marks: ReplyMarks,
        blobs: Blobs,
        notes: Notes,
        *,
        clock: Callable[[], float],
        metrics: Metrics,
        lease: float = DEFAULT_LEASE,
        buttons: Callable[[Job], tuple[str, ...]] = lambda job: (),
    ) -> None:
        self._marks = marks
        self._blobs = blobs
        self._notes = notes
        # Which text buttons go under a transcript: decided by the service (what it offers).
        self._buttons = buttons
        self.metrics = metrics
        self._clock = clock
        self.deliverers: dict[str, Deliverer] = {}
        self.offline: set[str] = set()
        # Seconds a claim's lease lasts (the poller's, handed to both by the composition
        # root): an inline reply holds a lease as long (see hold).
        self._lease = lease

    def register(self, platform: str, deliverer: Deliverer) -> None:
        """Route finished jobs of ``platform`` to ``deliverer``."""
        self.deliverers[platform] = deliverer

    def set_online(self, platform: str, online: bool) -> None:
        """While a platform's connection is down its jobs are still sent and polled, but their
        replies wait (the poller skips them) instead of using up delivery attempts."""
        if online:
            self.offline.discard(platform)
        else:
            self.offline.add(platform)

    async def notify(self, job: Job | None, retry: Mapping[str, object] | None = None) -> None:
        """Show ``job`` as the step just stored it (the store returns it: nothing re-read)."""
        deliverer = self.deliverers.get(job.origin.platform) if job else None
        if job is None or deliverer is None or job.origin.platform in self.offline:
            return
        if retry is not None and not job.state.terminal:
            # Shown, not stored: the next attempt's outcome replaces it.
            note = replies.retrying_text(str(retry["user_message"]))
            job = dataclasses.replace(job, error=note, extra={**job.extra, "retry": dict(retry)})
        try:
            await deliverer.progress(job)
        except Exception as exc:  # progress is cosmetic: never let it break the job
            _LOGGER.warning("job %s: progress update failed: %s", job.id, exc)

    def hold(self, job: Job) -> float | None:
        """Until when a step finishing ``job`` keeps its lease to reply inline: a full lease
        from now (what was left of the claim's may run out mid-send under load), or None."""
        return self._clock() + self._lease if self._delivers(job) else None

    def _delivers(self, job: Job) -> bool:
        """Whether a step finishing ``job`` keeps its lease to reply at once (see reply): not
        while its platform is offline (the reply then waits for the claim, which skips it)."""
        platform = job.origin.platform
        return platform in self.deliverers and platform not in self.offline

    async def reply(self, stored: Job | None, clip: VoiceClip | None = None) -> None:
        """Deliver a job a step has just finished, under the lease it kept: the reply leaves
        without waiting for the poller's next claim, and nothing is read back (the store
        returned the row, the clip is still in memory)."""
        if stored is None or stored.state not in REPLY_STATES or not self._delivers(stored):
            return
        # Only under the lease the step kept: if it finished while the platform was offline it
        # gave the lease back, and another process may already be sending this very reply.
        if stored.lease_owner == self._marks.owner and stored.lease_until is not None:
            await self.deliver(stored, self._clock(), clip)

    async def deliver(self, job: Job, now: float, clip: VoiceClip | None = None) -> None:
        """Hand a finished job to its platform; mark delivered only once the platform accepted
        (``clip``: the voice clip when the caller still has it, else it is loaded)."""
        deliverer = self.deliverers.get(job.origin.platform)
        if deliverer is None:
            return
        notes: Mapping[str, Any] = {}
        if job.kind is JobKind.TTS and job.state is JobState.COMPLETED:
            clip, notes = await self._clip(job, clip)
        reply = Reply(job, clip, self._buttons(job), self._checkpoint(job), notes)
        try:
            message_id = await deliverer.deliver(reply)
        except DeliveryError as exc:
            await self._failed(job, exc, exc.permanent, exc.retry_after)
        except Exception as exc:
            _LOGGER.exception("job %s: delivery crashed", job.id)
            await self._failed(job, exc, False, None)
        else:
            await self._marks.mark_delivered(job.id, message_id, self._clock())

    async def _clip(
        self, job: Job, clip: VoiceClip | None
    ) -> tuple[VoiceClip | None, Mapping[str, Any]]:
        """A speech job's clip (``clip`` when the caller has it, else loaded from the job that
        holds it: this one, or the one it reuses) and that job's adapter notes when reused."""
        source = job.options.get("reused_from")
        notes: Mapping[str, Any] = {}
        if source:
            original = await self._notes.get(str(source))
            notes = original.extra if original is not None else {}
        if clip is None:
            blob = await self._blobs.load_blob(str(source or job.id), "output")
            if blob is not None:
                clip = VoiceClip(blob.data, job.clip_duration or 0.0, job.waveform or b"")
        return clip, notes

    def _checkpoint(self, job: Job) -> Checkpoint:
        """A checkpoint that merges into the newest ``extra`` it stored (not the first one)."""
        latest = job

        async def checkpoint(**changes: object) -> Job:
            nonlocal latest
            extra = {**latest.extra, **changes}
            await self._notes.update_extra(job.id, extra, self._clock())
            latest = dataclasses.replace(latest, extra=extra)
            return latest

        return checkpoint

    async def _failed(
        self, job: Job, exc: Exception, permanent: bool, retry_after: float | None
    ) -> None:
        now = self._clock()
        self.metrics.delivery_failed(job.origin.platform, permanent=permanent)
        if permanent or job.delivery_attempts + 1 >= MAX_DELIVERY_ATTEMPTS:
            _LOGGER.warning("job %s: giving up delivery: %s", job.id, exc)
            await self._marks.mark_undeliverable(job.id, str(exc)[:500], now)
            return
        delay = retry_after if retry_after is not None else min(300.0, 2.0**job.delivery_attempts)
        _LOGGER.info("job %s: delivery failed (%s); retry in %.1fs", job.id, exc, delay)
        await self._marks.defer_delivery(job.id, now + delay, now)
