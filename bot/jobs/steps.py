"""JobSteps and Recovery: the job transitions the worker, split and text runners record."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.model.job import Blob, Job, Started


@dataclass(frozen=True, slots=True)
class Submission:
    """What a provider's answer to a submit left to record: its ticket and when to ask next."""

    ticket: Mapping[str, Any]
    next_poll_at: float
    cost: float | None = None
    queue_position: int | None = None
    keep_input: bool = False
    """Keep the input audio past the submit: the provider reruns a lost job for free."""


@dataclass(frozen=True, slots=True)
class NextPoll:
    """One more poll of a SUBMITTED job: when to ask next, its queue place and progress (0-1;
    None keeps the last one)."""

    next_poll_at: float
    queue_position: int | None = None
    progress: float | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished job's result, what it cost (None keeps the stored cost) and the synthesized
    clip, stored in the same transaction."""

    result: Mapping[str, Any]
    cost: float | None = None
    currency: str | None = None
    output_blob: Blob | None = None
    polled: bool = False
    """The step was a poll (counted)."""
    hold_until: float | None = None
    """Keep this step's lease, renewed to this time (a full lease, not what is left of the
    claim's), to deliver the reply at once in the same step (None: the lease ends and the
    delivery is claimed like any other step)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a job failed: the user-facing sentence and its code (``polled``, ``hold_until``: as
    in :class:`Completion`)."""

    error: str
    error_code: str | None = None
    polled: bool = False
    hold_until: float | None = None


class JobSteps(Protocol):
    """The guarded state changes of one job step; each is refused (None) when the job is no
    longer this step's (another process, a cancel or a finished step moved it)."""

    async def get(self, job_id: str) -> Job | None:
        """The job with this id as stored now, or None."""
        ...

    async def begin_submit(self, job_id: str, now: float) -> Started | None:
        """QUEUED → SUBMITTING, recorded *before* the request leaves (README: crash safety).

        Returns:
            The job as it now is and its input audio (read in the same round trip), or None
            when the job was not this step's to submit (nothing changed).
        """
        ...

    async def requeue(self, job_id: str, next_at: float, now: float) -> Job | None:
        """SUBMITTING → QUEUED: only when the provider provably did not take the job.

        Returns:
            The job as stored, or None when the guard refused.
        """
        ...

    async def mark_submitted(self, job_id: str, sent: Submission, now: float) -> Job | None:
        """SUBMITTING → SUBMITTED with the ticket; the input audio is dropped in the same step
        unless ``sent.keep_input`` (the provider reruns a lost job for free and needs it again).

        Returns:
            The job as stored (no re-read needed), or None when the guard refused.
        """
        ...

    async def requeue_lost(self, job_id: str, now: float) -> Job | None:
        """SUBMITTED → QUEUED for a job whose input was kept: the provider lost the run.

        Returns:
            The requeued job, or None when it was not SUBMITTED with its input kept.
        """
        ...

    async def reschedule(self, job_id: str, poll: NextPoll, now: float) -> Job | None:
        """Record one more poll of a SUBMITTED job, its progress and when to ask next.

        Returns:
            The job as stored, or None when the guard refused.
        """
        ...

    async def complete(self, job_id: str, done: Completion, now: float) -> Job | None:
        """SUBMITTING/SUBMITTED → COMPLETED with the result (and the output clip, together).

        Returns:
            The job as stored, or None when the guard refused (nothing changed).
        """
        ...

    async def fail(self, job_id: str, failure: Failure, now: float) -> Job | None:
        """Any unfinished state → FAILED with the user-facing sentence.

        Returns:
            The job as stored, or None when the guard refused.
        """
        ...


class Recovery(Protocol):
    """Settles the steps a dead process left mid-submit (their lease expired)."""

    async def recover_interrupted(
        self, now: float, message: str, platforms: Iterable[str], rerun: Callable[[Job], bool]
    ) -> list[str]:
        """Settle the SUBMITTING jobs whose lease has expired (their process died mid-request).

        Args:
            now: The current time.
            message: The sentence a failed job's user is shown.
            platforms: Only jobs of these platforms.
            rerun: True for a job whose provider reruns it for free: it goes back to QUEUED.
                Any other fails with ``message`` (resubmitting could pay twice).

        Returns:
            The ids of the failed jobs.
        """
        ...
