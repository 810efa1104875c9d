"""Drives the real core (``bot.app.core.Core``) through a bench platform, as an adapter would."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.mix import NANO_STT_MODEL, NANO_TTS_MODEL, PLATFORM, JobSpec
from bot.app.core import Core
from bot.config.load import Config
from bot.jobs.delivery import Reply
from bot.jobs.poller import ClockWatch
from bot.model.job import Job, JobState
from bot.model.speech import Origin

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A reply the bench platform accepted: when (monotonic), for which provider run."""

    job_id: str
    run_id: str | None
    at: float
    state: str
    polls: int


@dataclass(slots=True)
class BenchDeliverer:
    """The bench platform: records each final reply's time instead of sending it anywhere."""

    deliveries: dict[str, Delivery] = field(default_factory=dict)
    progress_calls: int = 0
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    _waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    async def deliver(self, reply: Reply) -> str | None:
        job = reply.job
        ticket = job.ticket or {}
        run = ticket.get("runId", ticket.get("request_id"))
        self.deliveries[job.id] = Delivery(
            job.id, None if run is None else str(run), time.monotonic(), job.state, job.poll_count
        )
        self._event.set()
        waiter = self._waiters.pop(job.id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return f"m{len(self.deliveries)}"

    async def delivered(self, job_id: str) -> Delivery:
        """Wait for the reply to one job."""
        if job_id not in self.deliveries:
            waiter = self._waiters.setdefault(job_id, asyncio.get_running_loop().create_future())
            await waiter
        return self.deliveries[job_id]

    async def progress(self, job: Job) -> None:
        self.progress_calls += 1

    async def wait(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` replies were delivered; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.deliveries) < count:
                    self._event.clear()
                    await self._event.wait()
        except TimeoutError:
            return False
        return True


@contextlib.asynccontextmanager
async def running_core(config: Config) -> AsyncIterator[tuple[Core, BenchDeliverer]]:
    """Open the core, register the bench platform, recover, run the poller; undo on exit."""
    core = await Core.open(config)
    deliverer = BenchDeliverer()
    core.worker.register(PLATFORM, deliverer)
    await core.worker.recover(core.clock())
    core.poller.start()
    try:
        yield core, deliverer
    finally:
        await core.poller.stop(timeout=5.0)
        await core.close()


def origin_for(spec: JobSpec) -> Origin:
    """Every job comes from its own chat and user, so no per-chat limit shapes the numbers."""
    return Origin(PLATFORM, chat_id=f"c{spec.index}", user_id=f"u{spec.index}", reply_to="1")


async def create(core: Core, spec: JobSpec) -> Job:
    """Hand one job to the service exactly as an adapter would."""
    origin = origin_for(spec)
    if spec.kind == "tts":
        # Each job's text is its own: the reference synthesizes every request, so the bench
        # measures synthesis, not the answer an identical /speak gets from the stored clip
        # (bench/speak_reuse.py measures that; the mix repeats texts of the same length).
        text = f"{spec.text} ({spec.index})"
        return await core.service.speak(origin, text, model=NANO_TTS_MODEL)
    if spec.provider == "cantonese":
        return await core.service.transcribe(
            origin, spec.audio, "voice.ogg", provider="cantonese", model="cantonese"
        )
    return await core.service.transcribe(
        origin, spec.audio, "voice.ogg", provider="nanogpt", model=NANO_STT_MODEL
    )


async def run_jobs(
    core: Core, deliverer: BenchDeliverer, specs: Sequence[JobSpec], timeout: float
) -> list[Job]:
    """Create each job at its arrival time and wait for every reply (bounded by ``timeout``)."""
    start = time.monotonic()
    watch = ClockWatch(time.time, time.monotonic, tolerance=0.0)  # any move is worth reporting
    jobs: list[Job] = []
    before = len(deliverer.deliveries)
    for spec in specs:
        delay = start + spec.arrival - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        jobs.append(await create(core, spec))
    if not await deliverer.wait(before + len(specs), timeout):
        stuck = [j.id for j in jobs if j.id not in deliverer.deliveries]
        await _report_stuck(core, stuck, watch.step())
    return jobs


async def _report_stuck(core: Core, ids: list[str], clock_step: float) -> None:
    """Say where each undelivered job stands, and whether the wall clock was stepped meanwhile."""
    now = core.clock()
    _LOGGER.warning(
        "ours: %d job(s) not delivered in time; the wall clock moved %+.3f s against the "
        "monotonic clock while they ran",
        len(ids),
        clock_step,
    )
    for job_id in ids[:20]:
        job = await core.store.get(job_id)
        if job is None:
            continue
        due = None if job.next_poll_at is None else round(job.next_poll_at - now, 2)
        _LOGGER.warning(
            "  %s %s/%s: %s, %d poll(s), next poll in %s s, queue position %s",
            job.id,
            job.provider,
            job.kind.value,
            job.state.value,
            job.poll_count,
            due,
            job.queue_position,
        )


async def throughput(config: Config, specs: Sequence[JobSpec], timeout: float) -> dict[str, Any]:
    """Burst ``specs`` (zero-latency fakes) through the core; wall time and bot CPU per job."""
    async with running_core(config) as (core, deliverer):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(create(core, s) for s in specs))
        done = await deliverer.wait(len(specs), timeout)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        times = sorted(d.at for d in deliverer.deliveries.values())
        slow = [
            (j.provider, j.kind.value, j.poll_count, round((j.completed_at or 0) - j.created_at, 2))
            for j in await core.store.recent(len(specs))
            if j.completed_at and j.completed_at - j.created_at > 10
        ][:5]
        failed = sum(1 for d in deliverer.deliveries.values() if d.state != JobState.COMPLETED)
    return {
        "jobs": len(specs),
        "delivered": len(deliverer.deliveries),
        "failed": failed,
        "all_delivered": float(done),
        "seconds": wall,
        "jobs_per_s": len(deliverer.deliveries) / wall,
        "cpu_ms_per_job": 1000 * cpu / max(1, len(deliverer.deliveries)),
        "delivery_spread_s": (times[-1] - times[0]) if times else 0.0,
        "slow_jobs": slow,  # (provider, kind, polls, seconds to completion) over 10 s
    }
