"""Leases with the real poller and worker: a long step keeps its claim, another process cannot
take it meanwhile, and a step cut off at shutdown gives its claim back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.jobs.delivery import Reply
from bot.jobs.poller import Poller, Reach
from bot.jobs.steps import Failure
from bot.jobs.worker import JobWorker
from bot.model.job import Blob, Job, JobKind, NewJob
from bot.model.speech import AudioInput, Origin, SttOptions, Transcript
from bot.providers.base import PollResult, SttCapabilities, Ticket
from bot.storage.sqlite import SqliteJobStore
from bot.storage.steps import Steps
from testkit.support import FakeClock, RecordingDeliverer, job_worker

ORIGIN = Origin(platform="telegram", chat_id="1", user_id="2")
NEW = NewJob(JobKind.STT, ORIGIN, "nanogpt", "m", {}, deadline_at=1e12)


class SlowDeliverer:
    """Holds every delivery until released (a platform that answers slowly)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = asyncio.Event()
        self.delivered: list[str] = []

    async def deliver(self, reply: Reply) -> str | None:
        self.started.set()
        await self.release.wait()
        self.delivered.append(reply.job.id)
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
    worker = job_worker(mine, stt={}, tts={}, clock=clock, lease=15.0)
    deliverer = SlowDeliverer()
    worker.register("telegram", deliverer)
    poller = Poller(mine.claims, worker, clock=clock, lease=15.0, max_idle=0.2)
    job = await mine.create(NEW, now=clock.now)
    await mine.steps.fail(job.id, Failure("no"), clock.now)  # a reply to deliver
    try:
        poller.start()
        await asyncio.wait_for(deliverer.started.wait(), 10)
        clock.advance(20.0)  # longer than the lease: without renewal it would be up for grabs
        leased = await other.get(job.id)
        assert leased is not None and leased.lease_until == 1015.0 < clock.now
        await poller.housekeep()  # what the keeper task does every lease / 3
        renewed = await other.get(job.id)
        assert renewed is not None and renewed.lease_until == clock.now + 15.0
        assert await other.claims.claim(clock.now, Reach(["telegram"]), 10, 15.0) == []
        deliverer.release.set()
        await asyncio.wait_for(deliverer.finished.wait(), 10)
        for _ in range(500):  # mark_delivered follows the platform's answer: wait for it
            current = await other.get(job.id)
            if current is not None and current.delivered_at is not None:
                break
            await asyncio.sleep(0.01)
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
    worker = job_worker(mine, stt={}, tts={}, clock=clock, lease=15.0)
    deliverer = SlowDeliverer()
    worker.register("telegram", deliverer)
    poller = Poller(mine.claims, worker, clock=clock, lease=15.0, max_idle=0.2)
    job = await mine.create(NEW, now=clock.now)
    await mine.steps.fail(job.id, Failure("no"), clock.now)
    poller.start()
    await asyncio.wait_for(deliverer.started.wait(), 10)
    await poller.stop(timeout=0.1)  # the delivery never finishes: cancelled
    claimed = await other.claims.claim(clock.now, Reach(["telegram"]), 10, 15.0)
    assert [j.id for j in claimed] == [job.id]  # free at once, not after the lease
    await mine.close()
    await other.close()


class InstantStt:
    """A synchronous speech-to-text provider: the transcript comes back with the submit."""

    name = "instant"

    def capabilities(self, model: str) -> SttCapabilities:
        return SttCapabilities(
            asynchronous=False,
            diarization=False,
            timestamps=False,
            formats=frozenset({"ogg"}),
            max_upload_bytes=1 << 20,
        )

    async def submit(self, audio: AudioInput, options: SttOptions) -> Transcript | Ticket:
        return Transcript(text="hello there")

    async def poll(self, ticket: Ticket) -> PollResult:
        raise AssertionError("a synchronous model is never polled")


class OnlineAfterComplete(Steps):
    """The real steps; the platform's connection comes back while ``complete`` is being
    written (on PostgreSQL that write is a network round trip the loop waits on)."""

    worker: JobWorker

    async def complete(self, *args: Any, **kwargs: Any) -> Job | None:
        stored = await super().complete(*args, **kwargs)
        self.worker.set_online("telegram", True)
        return stored


async def test_leases_step_finished_offline_leaves_the_reply_to_one_process(
    tmp_path: Path,
) -> None:
    """A step that finished while its platform was offline gave its lease back, so another
    process may claim the reply: the first must not send it too when the platform returns."""
    clock = FakeClock(1000.0)
    mine = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    other = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    steps = OnlineAfterComplete(mine.db, mine.owner)
    worker = job_worker(mine, steps=steps, stt={"instant": InstantStt()}, tts={}, clock=clock)
    steps.worker = worker
    slow = SlowDeliverer()
    worker.register("telegram", slow)
    worker.set_online("telegram", False)
    theirs = job_worker(other, stt={"instant": InstantStt()}, tts={}, clock=clock)
    out = RecordingDeliverer()
    theirs.register("telegram", out)
    new = NewJob(JobKind.STT, ORIGIN, "instant", "m", {}, deadline_at=1e12, input_duration=1.0)
    job = await mine.create(new, now=clock.now, input_blob=Blob(b"OggS", "a.ogg", "audio/ogg"))
    claimed = await mine.claims.claim(clock.now, Reach(["telegram"]), 10, 15.0)
    step = asyncio.create_task(worker.advance(claimed[0], clock.now))
    try:
        # Either the first process is already sending (the race) or its step has ended.
        await asyncio.wait(
            [step, asyncio.create_task(slow.started.wait())],
            return_when=asyncio.FIRST_COMPLETED,
            timeout=10,
        )
        replies = await other.claims.claim(clock.now, Reach(["telegram"]), 10, 15.0)
        assert [j.id for j in replies] == [job.id]  # the lease was given back
        await theirs.advance(replies[0], clock.now)
        slow.release.set()
        await asyncio.wait_for(step, 10)
    finally:
        slow.release.set()
        step.cancel()
    assert [j.id for j, _ in out.delivered] == [job.id]
    assert slow.delivered == []  # one reply, sent by the process that claimed it
    await mine.close()
    await other.close()
