"""Leases with the real poller and worker: a long step keeps its claim, another process cannot
take it meanwhile, and a step cut off at shutdown gives its claim back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.jobs.models import Job, JobKind, NewJob
from bot.jobs.poller import Poller
from bot.jobs.worker import JobWorker
from bot.models import Origin, VoiceClip
from bot.storage.sqlite import SqliteJobStore
from tests.support import FakeClock

ORIGIN = Origin(platform="telegram", chat_id="1", user_id="2")
NEW = NewJob(JobKind.STT, ORIGIN, "nanogpt", "m", {}, deadline_at=1e12)


class SlowDeliverer:
    """Holds every delivery until released (a platform that answers slowly)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = asyncio.Event()
        self.delivered: list[str] = []

    async def deliver(self, job: Job, clip: VoiceClip | None) -> str | None:
        self.started.set()
        await self.release.wait()
        self.delivered.append(job.id)
        self.finished.set()
        return "m1"

    async def progress(self, job: Job) -> None:
        return None


async def test_leases_long_step_is_renewed_and_not_taken_by_another_process(
    tmp_path: Path,
) -> None:
    clock = FakeClock(1000.0)
    mine = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    other = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    worker = JobWorker(mine, stt={}, tts={}, clock=clock)
    deliverer = SlowDeliverer()
    worker.register("telegram", deliverer)
    poller = Poller(mine, worker, clock=clock, lease=15.0, max_idle=0.2)
    job = await mine.create(NEW, now=clock.now)
    await mine.fail(job.id, "no", now=clock.now)  # a reply to deliver
    try:
        poller.start()
        await asyncio.wait_for(deliverer.started.wait(), 10)
        clock.advance(20.0)  # longer than the lease: without renewal it would be up for grabs
        leased = await other.get(job.id)
        assert leased is not None and leased.lease_until == 1015.0 < clock.now
        await poller.housekeep()  # what the keeper task does every lease / 3
        renewed = await other.get(job.id)
        assert renewed is not None and renewed.lease_until == clock.now + 15.0
        assert await other.claim(clock.now, ["telegram"], 10, 15.0) == []
        deliverer.release.set()
        await asyncio.wait_for(deliverer.finished.wait(), 10)
        await asyncio.sleep(0.1)  # mark_delivered follows the platform's answer
    finally:
        await poller.stop()
    done = await other.get(job.id)
    assert done is not None and done.delivered_at is not None and done.lease_owner is None
    assert deliverer.delivered == [job.id]
    await mine.close()
    await other.close()


async def test_leases_step_cut_off_at_shutdown_is_released(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    mine = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    other = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    worker = JobWorker(mine, stt={}, tts={}, clock=clock)
    deliverer = SlowDeliverer()
    worker.register("telegram", deliverer)
    poller = Poller(mine, worker, clock=clock, lease=15.0, max_idle=0.2)
    job = await mine.create(NEW, now=clock.now)
    await mine.fail(job.id, "no", now=clock.now)
    poller.start()
    await asyncio.wait_for(deliverer.started.wait(), 10)
    await poller.stop(timeout=0.1)  # the delivery never finishes: cancelled
    claimed = await other.claim(clock.now, ["telegram"], 10, 15.0)
    assert [j.id for j in claimed] == [job.id]  # free at once, not after the lease
    await mine.close()
    await other.close()
