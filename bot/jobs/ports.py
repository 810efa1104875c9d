"""Ports: the storage Protocols the core depends on (backends live in ``bot.storage``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from bot.model.job import Activity, Admission, Blob, Job, JobState, NewJob, NewPart, Part, Started


class SpeedStore(Protocol):
    """Where learned provider speeds persist (predictive polling)."""

    async def load_speed_stats(self) -> dict[tuple[str, str, str], dict[str, float]]:
        """All saved fits keyed by (provider, model, kind)."""
        ...

    async def save_speed_stats(
        self, key: tuple[str, str, str], values: Mapping[str, float], now: float
    ) -> None:
        """Insert or replace one fit (the keys of ``values`` are its fields)."""
        ...


class ChatSettingsStore(Protocol):
    """Per-chat and per-user settings, as JSON-able mappings."""

    async def get_settings(self, platform: str, chat_id: str) -> dict[str, Any]:
        """The stored settings of a chat (empty when never changed)."""
        ...

    async def put_settings(
        self, platform: str, chat_id: str, data: Mapping[str, Any], now: float
    ) -> None:
        """Store a chat's settings, replacing the previous ones."""
        ...

    async def get_user_settings(self, platform: str, user_id: str) -> dict[str, Any]:
        """A person's own settings, for every chat (empty when never changed)."""
        ...

    async def put_user_settings(
        self, platform: str, user_id: str, data: Mapping[str, Any], now: float
    ) -> None:
        """Store a person's own settings, replacing the previous ones."""
        ...

    async def get_preferences(
        self, platform: str, chat_id: str, user_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A chat's and a person's stored settings (each empty when never changed), read in
        one round trip: every job starts with this read."""
        ...


class UsageQueries(Protocol):
    """What limits and /usage read; answered off the job-step path."""

    async def activity(
        self, platform: str, user_id: str, chat_id: str, *, started_since: float, day: float
    ) -> Activity:
        """A user's and a chat's recent use, as the limits count it."""
        ...

    async def usage(self, since: float, platform: str | None = None) -> list[dict[str, Any]]:
        """Per user and chat since ``since``: jobs, audio seconds, characters, cost.

        Returns:
            Rows with keys platform, chat_id, user_id, jobs, audio_seconds, chars, cost, currency.
        """
        ...

    async def job_counts(self) -> list[tuple[str, str, str, int]]:
        """How many jobs are stored, by state, kind and provider (for /metrics).

        Returns:
            ``(state, kind, provider, count)`` rows, one per combination present.
        """
        ...


class Leader(Protocol):
    """A named lock that one process at a time holds (e.g. the one Telegram ``getUpdates``
    consumer per token); released by the server when its holder dies."""

    async def acquire(self) -> None:
        """Wait until this process holds the lock."""
        ...

    async def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting; True when this process holds it."""
        ...

    async def wait_lost(self) -> None:
        """Return when the lock was lost (its connection died); :meth:`acquire` again."""
        ...

    async def release(self) -> None:
        """Give the lock up (a standby takes over)."""
        ...


class JobStore(SpeedStore, ChatSettingsStore, UsageQueries, Protocol):
    """The only writer of job rows. Every state change is one guarded transaction; every step
    (submit, poll, deliver) is claimed with a lease before it runs, so several processes can
    share one database without doing a step twice."""

    owner: str
    """This process's lease owner id."""

    async def close(self) -> None:
        """Release the connection(s); the store is unusable afterwards."""
        ...

    async def lock_runner(self, platforms: Iterable[str]) -> None:
        """Register this process as a ``voicebot run`` serving ``platforms`` (SQLite: the only
        one, which takes over the leases a dead predecessor left on their jobs at once).

        Raises:
            BotError: the backend serves one runner and another one is running (named).
        """
        ...

    async def create(
        self,
        new: NewJob,
        *,
        now: float,
        input_blob: Blob | None = None,
        state: JobState = JobState.QUEUED,
        result: Mapping[str, Any] | None = None,
        output_blob: Blob | None = None,
        admit: Admission | None = None,
    ) -> Job:
        """Insert a job (QUEUED with its input, or already COMPLETED for a reused result); with
        ``new.unique_key`` held by a live job, that job instead (nothing is inserted).

        Raises:
            Exception: whatever ``admit.check`` raises (e.g. LimitExceeded): nothing is stored.
        """
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        ...

    async def find_for_chat(self, platform: str, chat_id: str, job_id: str) -> Job | None:
        """The job only if it belongs to this chat (chats never see each other's jobs)."""
        ...

    async def recent_for_chat(self, platform: str, chat_id: str, limit: int = 10) -> list[Job]:
        """Newest jobs of one chat first."""
        ...

    async def recent(self, limit: int = 20) -> list[Job]:
        """Newest jobs overall first."""
        ...

    async def find_reusable(self, dedup_key: str) -> Job | None:
        """The newest completed job with this dedup key (its result can be reused for free)."""
        ...

    async def find_unique(self, unique_key: str) -> Job | None:
        """The live (not failed or cancelled) job holding ``unique_key``, if any."""
        ...

    async def find_released(self, unique_key: str) -> Job | None:
        """The newest failed or cancelled job that held ``unique_key`` (not yet given up to a
        new job): its finished parts may be reused."""
        ...

    async def find_by_source(self, platform: str, chat_id: str, source: str) -> Job | None:
        """The job created from one platform event (``origin.extra["source"]``), if any."""
        ...

    async def load_blob(self, job_id: str, role: str) -> Blob | None:
        """The ``input`` or ``output`` audio of a job, if still kept."""
        ...

    async def keep_recording(self, job_id: str, blob: Blob) -> None:
        """Keep a job's recording (``load_blob(job_id, "recording")``) until
        ``options["keep_audio_until"]``, past the moment its input is dropped."""
        ...

    async def drop_recordings(self, now: float) -> int:
        """Drop the recordings kept past their time (or of jobs without a transcript)."""
        ...

    def leader(self, name: str) -> Leader:
        """The lock named ``name``, shared by every process on this database."""
        ...

    # -- parts of a long recording (changed only under the job's lease) -----------------------

    async def store_parts(
        self, job_id: str, parts: Sequence[NewPart], *, next_poll_at: float, now: float
    ) -> bool:
        """SUBMITTING → SUBMITTED for a long recording just split: its parts are stored (queued,
        with their audio) and its whole input dropped in the same transaction."""
        ...

    async def parts(self, job_id: str) -> list[Part]:
        """The parts of a job in recording order (empty when it was not split)."""
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
        self,
        job_id: str,
        index: int,
        ticket: Mapping[str, Any],
        *,
        now: float,
        cost: float | None = None,
        keep_input: bool = False,
    ) -> bool:
        """Part SUBMITTING → SUBMITTED with its ticket (audio dropped unless ``keep_input``)."""
        ...

    async def complete_part(
        self,
        job_id: str,
        index: int,
        result: Mapping[str, Any],
        *,
        now: float,
        cost: float | None = None,
        currency: str | None = None,
    ) -> bool:
        """Part → COMPLETED with its transcript; the job's cost becomes its parts' sum."""
        ...

    async def fail_part(self, job_id: str, index: int, error: str, *, now: float) -> bool:
        """Part (unfinished) → FAILED with the sentence the stitched transcript shows."""
        ...

    # -- claims (leases) ----------------------------------------------------------------------

    async def claim(
        self,
        now: float,
        platforms: Iterable[str],
        limit: int,
        lease: float,
        *,
        deliver_to: Iterable[str] | None = None,
    ) -> list[Job]:
        """Lease up to ``limit`` steps due at ``now`` for this owner, replies first, each queue
        soonest first, in the transaction that picks them. A job leased by anyone (this process
        included) until after ``now`` is never returned, nor a poll of a run living in another
        process (``keep_input``: a local engine) until it is overdue by a grace period.

        Args:
            now: The current time.
            platforms: Only jobs of these platforms.
            limit: At most this many steps.
            lease: Seconds the claimed steps are leased for.
            deliver_to: Only replies of these platforms (those connected now; default: all of
                ``platforms``): a reply to a platform that is down waits, its submits and polls
                do not.

        Returns:
            The claimed jobs as they are now (a current snapshot), leased until ``now + lease``.
        """
        ...

    async def renew(self, job_ids: Sequence[str], until: float) -> int:
        """Extend this owner's leases on ``job_ids`` to ``until``; how many it still held."""
        ...

    async def release(self, job_ids: Sequence[str]) -> int:
        """Give up this owner's leases on ``job_ids`` (steps that will not finish)."""
        ...

    async def next_wakeup(
        self, platforms: Iterable[str], *, deliver_to: Iterable[str] | None = None
    ) -> float | None:
        """The earliest time a step (submit, poll, delivery) may become claimable; deliveries
        only of ``deliver_to`` (as in :meth:`claim`)."""
        ...

    async def watch(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process creates a job or makes one due sooner (a
        backend without notifications does nothing; the poller's own clock covers it)."""
        ...

    # -- transitions ---------------------------------------------------------------------------

    async def begin_submit(self, job_id: str, now: float) -> Started | None:
        """QUEUED → SUBMITTING, recorded *before* the request leaves (README: crash safety).

        Returns:
            The job as it now is and its input audio (read in the same round trip), or None
            when the job was not this step's to submit (nothing changed).
        """
        ...

    async def requeue(self, job_id: str, next_at: float, now: float) -> Job | None:
        """SUBMITTING → QUEUED: only when the provider provably did not take the job; the job
        as stored, or None when the guard refused."""
        ...

    async def mark_submitted(
        self,
        job_id: str,
        ticket: Mapping[str, Any],
        *,
        next_poll_at: float,
        now: float,
        cost: float | None = None,
        queue_position: int | None = None,
        keep_input: bool = False,
    ) -> Job | None:
        """SUBMITTING → SUBMITTED with the ticket; the input audio is dropped in the same step
        unless ``keep_input`` (the provider reruns a lost job for free and needs it again).

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

    async def reschedule(
        self,
        job_id: str,
        *,
        next_poll_at: float,
        now: float,
        queue_position: int | None = None,
        progress: float | None = None,
    ) -> Job | None:
        """Record one more poll of a SUBMITTED job, its progress (0-1; None keeps the last one)
        and when to ask next; the job as stored, or None when the guard refused."""
        ...

    async def complete(
        self,
        job_id: str,
        result: Mapping[str, Any],
        *,
        now: float,
        cost: float | None = None,
        currency: str | None = None,
        output_blob: Blob | None = None,
        polled: bool = False,
        hold_until: float | None = None,
    ) -> Job | None:
        """SUBMITTING/SUBMITTED → COMPLETED with the result (and the output clip, together).

        Args:
            hold_until: keep this step's lease, renewed to this time (a full lease, not what
                is left of the claim's), to deliver the reply at once in the same step (None:
                the lease ends and the delivery is claimed like any other step).

        Returns:
            The job as stored, or None when the guard refused (nothing changed).
        """
        ...

    async def fail(
        self,
        job_id: str,
        error: str,
        *,
        now: float,
        error_code: str | None = None,
        polled: bool = False,
        hold_until: float | None = None,
    ) -> Job | None:
        """Any unfinished state → FAILED with the user-facing sentence (``hold_until``: as in
        :meth:`complete`); the job as stored, or None when the guard refused."""
        ...

    async def cancel(self, job_id: str, now: float) -> Job | None:
        """QUEUED/SUBMITTING/SUBMITTED → CANCELLED (final, never delivered), whoever holds it.

        Returns:
            The cancelled job, or None when it was not cancellable (gone or already finished).
        """
        ...

    async def recover_interrupted(
        self,
        now: float,
        message: str,
        platforms: Iterable[str],
        rerun: Callable[[Job], bool] = lambda job: False,
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

    async def shift_clock(
        self, seconds: float, platforms: Iterable[str], exclude: Sequence[str] = ()
    ) -> int:
        """Move the stored times of unfinished or undelivered jobs after a wall-clock step."""
        ...

    async def mark_delivered(self, job_id: str, message_id: str | None, now: float) -> bool:
        """Record that the platform accepted the reply (once: later calls return False)."""
        ...

    async def defer_delivery(self, job_id: str, deliver_after: float, now: float) -> bool:
        """Try delivering again later (platform rate limit or outage)."""
        ...

    async def mark_undeliverable(self, job_id: str, reason: str, now: float) -> bool:
        """Give up delivering (bot blocked, chat gone): never retried again."""
        ...

    async def set_progress_message(self, job_id: str, message_id: str, now: float) -> bool:
        """Remember the placeholder message the adapter edits as the job moves."""
        ...

    async def update_extra(self, job_id: str, extra: Mapping[str, Any], now: float) -> bool:
        """Replace the adapter's per-job notes."""
        ...

    async def forget(self, platform: str, chat_id: str, user_id: str) -> int:
        """Delete a user's jobs in one chat (a job mid-submit is kept); returns the count."""
        ...

    async def purge(self, before: float) -> int:
        """Delete finished, answered jobs completed before ``before``; returns the count."""
        ...
