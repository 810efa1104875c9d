"""Poller: runs due job steps with bounded concurrency; run_once for tests, run_forever for prod."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from bot.jobs.delivery import DEFAULT_LEASE
from bot.jobs.worker import JobWorker
from bot.model.job import Job

IN_STEP: ContextVar[bool] = ContextVar("voicebot_in_step", default=False)
"""True in the poller's tasks and the job steps they start: a store with a bounded connection
pool serves them before the requests that create jobs (see bot.storage.postgres)."""
_LOGGER = logging.getLogger(__name__)


def _boot_clock() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


# Linux's boot-time clock counts time asleep too (CLOCK_MONOTONIC does not), so a suspended host
# is not mistaken for a clock step; elsewhere the monotonic clock is the steady one.
_steady: Callable[[], float] = _boot_clock if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic


class ClockWatch:
    """Notices the wall clock being stepped while the bot runs (NTP at boot on a board with no
    real-time clock, a manual change), by how far it moved against a steady clock.

    Slow drift and NTP slewing stay under ``tolerance`` between two looks and are followed.
    """

    def __init__(
        self,
        wall: Callable[[], float],
        steady: Callable[[], float] = _steady,
        tolerance: float = 2.0,
    ) -> None:
        self._wall = wall
        self._steady = steady
        self._tolerance = tolerance
        self._offset = wall() - steady()

    def step(self) -> float:
        """Seconds the wall clock jumped since the last look (0.0 if it did not). A jump stays
        reported until :meth:`followed` says it was dealt with."""
        offset = self._wall() - self._steady()
        jump = offset - self._offset
        if abs(jump) >= self._tolerance:
            return jump
        self._offset = offset
        return 0.0

    def followed(self, jump: float) -> None:
        """The jump :meth:`step` reported has been applied."""
        self._offset += jump


@dataclass(frozen=True, slots=True)
class Reach:
    """The platforms whose jobs a process steps, and those of them its replies go to now."""

    platforms: Sequence[str]
    deliver_to: Sequence[str] | None = None
    """Replies only to these (those connected now; None: all of ``platforms``): a reply to a
    platform that is down waits, its submits and polls do not."""

    def replies(self) -> list[str]:
        """The platforms a reply may be claimed for now."""
        if self.deliver_to is None:
            return list(self.platforms)
        return [p for p in self.deliver_to if p in self.platforms]


class Queue(Protocol):
    """The due steps the poller claims, each under a lease in the transaction that picks it."""

    async def claim(self, now: float, reach: Reach, limit: int, lease: float) -> list[Job]:
        """Lease up to ``limit`` steps due at ``now`` for this owner, replies first, each queue
        soonest first. A job leased by anyone (this process included) until after ``now`` is
        never returned, nor a poll of a run living in another process (``keep_input``: a local
        engine) until it is overdue by a grace period.

        Args:
            now: The current time.
            reach: Only jobs of these platforms, and replies only to those connected.
            limit: At most this many steps.
            lease: Seconds the claimed steps are leased for.

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

    async def next_wakeup(self, reach: Reach) -> float | None:
        """The earliest time a step (submit, poll, delivery) of ``reach`` may become claimable."""
        ...

    async def shift_clock(
        self, seconds: float, platforms: Iterable[str], exclude: Sequence[str] = ()
    ) -> int:
        """Move the stored times of unfinished or undelivered jobs after a wall-clock step,
        leaving out ``exclude`` (running steps); how many jobs moved."""
        ...


class Poller:
    """Claims what is due in the store (submits, polls, deliveries) and hands it to the worker.

    Each step is claimed with a lease (owner id + ``lease_until``) in the transaction that picks
    it, so no other task or process runs it meanwhile; a housekeeping task renews the leases of
    running steps every ``lease / 3`` seconds and fails submits whose process died (their lease
    expired). Replies come before polls, so a finished job is never queued behind a backlog of
    polls. Sleeping is driven by the store's next due time and cut short by :meth:`wake` (a new
    job, here or in another process) or a finished task.
    """

    def __init__(
        self,
        queue: Queue,
        worker: JobWorker,
        *,
        clock: Callable[[], float] = time.time,
        steady: Callable[[], float] | None = None,
        concurrency: int = 32,
        max_idle: float = 30.0,
        coalesce: float = 0.005,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        self._queue = queue
        self._worker = worker
        self._clock = clock
        # A test's own clock is its own steady clock: only the real one gets stepped.
        self._watch = ClockWatch(clock, steady or (_steady if clock is time.time else clock))
        self._concurrency = max(1, concurrency)
        self._max_idle = max_idle
        self._coalesce = coalesce
        self._lease = lease  # the composition root hands delivery the same one (inline replies)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._event = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for due work now (called when a job is created or a platform comes up)."""
        self._event.set()

    async def _claim(self, now: float) -> tuple[list[Job], float | None]:
        """Claim the steps due at ``now`` that fit, and say when to look again (None: when a
        running step finishes, the poller being full)."""
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            return [], None
        platforms = list(self._worker.deliverers)
        # Replies wait for their platform's connection (no delivery attempt is used up while it
        # is down); submits and polls of its jobs go on meanwhile.
        online = [p for p in platforms if p not in self._worker.offline]
        reach = Reach(platforms, online)
        jobs = await self._queue.claim(now, reach, free, self._lease)
        if len(jobs) >= free:
            return jobs, None
        return jobs, await self._queue.next_wakeup(reach)

    def _start(self, job: Job, now: float) -> None:
        task = asyncio.create_task(self._worker.advance(job, now), name=f"job-{job.id}")
        self._in_flight[job.id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(job.id, None)
            self._event.set()

        task.add_done_callback(done)

    async def run_once(self, now: float | None = None) -> int:
        """Run every step due at ``now`` (default: the clock) to completion; return how many."""
        now = self._clock() if now is None else now
        count = 0
        while True:
            jobs, _ = await self._claim(now)
            if not jobs:
                break
            for job in jobs:
                self._start(job, now)
            count += len(jobs)
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        return count

    async def run_forever(self) -> None:
        """Work until :meth:`stop`; sleeps exactly until the next due step or a wake-up."""
        self._stopping = False
        IN_STEP.set(True)  # this task's context, copied into every step it starts
        while not self._stopping:
            self._event.clear()
            now = self._clock()
            try:
                await self._follow_clock_step()
                jobs, next_at = await self._claim(now)
                for job in jobs:
                    self._start(job, now)
            except Exception:
                _LOGGER.exception("poller: store query failed; retrying")
                jobs, next_at = [], now + 1.0
            delay = self._max_idle if next_at is None else next_at - self._clock()
            if delay <= 0 and not jobs and self._in_flight:
                delay = self._max_idle  # everything due is in flight: a finished task wakes us
            delay = min(max(delay, 0.0), self._max_idle)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._event.wait(), delay)
                    # Woken by a finished step or a new job: let the steps finishing right now
                    # land too, so one query serves several of them.
                    await asyncio.sleep(self._coalesce)

    async def housekeep(self) -> None:
        """Renew the leases of the running steps, then settle submits whose process died."""
        now = self._clock()
        running = list(self._in_flight)
        if running:
            held = await self._queue.renew(running, now + self._lease)
            if held < len(running):
                _LOGGER.info("poller: %d running step(s) lost their lease", len(running) - held)
        if await self._worker.recover(now):
            self.wake()

    async def _keep_forever(self) -> None:
        IN_STEP.set(True)
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await self.housekeep()
            except Exception:
                _LOGGER.exception("poller: renewing leases failed; retrying")

    async def _follow_clock_step(self) -> None:
        """If the wall clock was stepped, move the stored job times with it: a step back would
        leave every job waiting out the step, a step forward would make them look overdue,
        slow and past their deadlines."""
        jump = self._watch.step()
        if not jump:
            return
        moved = await self._queue.shift_clock(
            jump, self._worker.deliverers, exclude=list(self._in_flight)
        )
        self._watch.followed(jump)
        if self._in_flight:  # their leases were written by the old clock
            await self._queue.renew(list(self._in_flight), self._clock() + self._lease)
        _LOGGER.warning(
            "poller: the wall clock was stepped by %+.1f s; moved the times of %d job(s) with it",
            jump,
            moved,
        )

    @property
    def running(self) -> bool:
        """Whether the background loop is alive (for /healthz)."""
        return self._loop is not None and not self._loop.done()

    def start(self) -> None:
        """Run :meth:`run_forever` (and the lease keeper) in background tasks until :meth:`stop`."""
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self.run_forever(), name="poller")
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_forever(), name="poller-leases")

    async def stop(self, timeout: float = 10.0, *, cut: asyncio.Event | None = None) -> int:
        """Stop claiming at once, let the steps in flight finish (up to ``timeout`` seconds, or
        until ``cut`` is set) and give back the leases of those that do not; returns how many
        were cut short.

        The loop is cancelled before the steps are collected: a loop still inside its claim
        could otherwise start a step after that, which nobody would wait for. The lease keeper
        runs on while they finish: a drain longer than a lease must not let another process
        settle a submit still in flight here as interrupted. A step cut short at the deadline
        gives its lease back at once, so another process (or this one, restarted) resumes it
        without waiting for the lease to run out; a submit among them is settled as
        interrupted, the one case a drain cannot avoid.
        """
        self._stopping = True
        self._event.set()
        await _cancelled(self._loop)
        self._loop = None
        tasks = dict(self._in_flight)
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _LOGGER.info(
                "poller: draining %d step(s) in flight (up to %.0f s)", len(tasks), timeout
            )
            pending = await _settle(set(tasks.values()), timeout, cut)
        await _cancelled(self._keeper)
        self._keeper = None
        if not pending:
            if tasks:
                _LOGGER.info("poller: drained; every step in flight finished")
            return 0
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        cancelled = [job_id for job_id, task in tasks.items() if task in pending]
        _LOGGER.warning(
            "poller: %d step(s) still in flight after %.0f s were cut short and their leases "
            "released (a submit among them is reported as interrupted): %s",
            len(cancelled),
            timeout,
            ", ".join(cancelled),
        )
        with contextlib.suppress(Exception):  # a database that is down must not hold us
            async with asyncio.timeout(2.0):
                await self._queue.release(cancelled)
        return len(cancelled)


async def _settle(
    tasks: set[asyncio.Task[None]], timeout: float, cut: asyncio.Event | None
) -> set[asyncio.Task[None]]:
    """Wait until ``tasks`` are done, ``timeout`` passed or ``cut`` is set; the unfinished."""
    everything = asyncio.gather(*tasks, return_exceptions=True)
    waiters: set[asyncio.Future[Any]] = {everything}
    if cut is not None:
        waiters.add(asyncio.ensure_future(cut.wait()))
    await asyncio.wait(waiters, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters - {everything}:
        waiter.cancel()
    return {task for task in tasks if not task.done()}


async def _cancelled(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
