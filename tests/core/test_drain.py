"""Draining on shutdown: no new claims, steps in flight finish and deliver with their leases still
renewed, what outlives the grace gives its lease back; run_bot's order and /healthz meanwhile."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from bot.app.core import Core, run_bot
from bot.jobs.delivery import Reply
from bot.jobs.poller import Poller, Reach
from bot.model.job import Blob, Job, JobKind, JobState, NewJob
from bot.model.speech import AudioInput, Origin, SttOptions, Transcript
from bot.providers.base import PollResult, SttCapabilities, Ticket
from bot.storage.sqlite import SqliteJobStore
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.support import FakeClock, RecordingDeliverer, job_worker, make_config

ORIGIN = Origin(platform="telegram", chat_id="1", user_id="2")
OGG = Blob(b"OggS", "a.ogg", "audio/ogg")


class HeldStt:
    """A synchronous speech-to-text provider whose answers wait for ``answer``."""

    name = "held"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.answer = asyncio.Event()
        self.calls = 0

    def capabilities(self, model: str) -> SttCapabilities:
        return SttCapabilities(
            asynchronous=False,
            diarization=False,
            timestamps=False,
            formats=frozenset({"ogg"}),
            max_upload_bytes=1 << 20,
        )

    async def submit(self, audio: AudioInput, options: SttOptions) -> Transcript | Ticket:
        self.calls += 1
        self.started.set()
        await self.answer.wait()
        return Transcript(text="hello there")

    async def poll(self, ticket: Ticket) -> PollResult:
        raise AssertionError("a synchronous model is never polled")


def _new() -> NewJob:
    return NewJob(JobKind.STT, ORIGIN, "held", "m", {}, deadline_at=1e12, input_duration=1.0)


async def _lease_until(store: SqliteJobStore, job_id: str) -> float:
    job = await store.get(job_id)
    assert job is not None and job.lease_until is not None
    return job.lease_until


async def test_drain_step_in_flight_finishes_with_its_lease_renewed_and_nothing_new_claimed(
    tmp_path: Path,
) -> None:
    clock = FakeClock(1000.0)
    mine = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    other = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    stt = HeldStt()
    worker = job_worker(mine, stt={"held": stt}, tts={}, clock=clock, lease=0.3)
    out = RecordingDeliverer()
    worker.register("telegram", out)
    poller = Poller(mine.claims, worker, clock=clock, lease=0.3, max_idle=0.2)
    first = await mine.create(_new(), now=clock.now, input_blob=OGG)
    poller.start()
    await asyncio.wait_for(stt.started.wait(), 10)
    draining = asyncio.create_task(poller.stop(timeout=30))
    later = await mine.create(_new(), now=clock.now, input_blob=OGG)
    poller.wake()
    clock.advance(20.0)  # far past the lease: only the keeper's renewal keeps the step ours
    for _ in range(500):  # the keeper renews every lease / 3 (0.1 s)
        if await _lease_until(other, first.id) > clock.now:
            break
        await asyncio.sleep(0.02)
    claimed = await other.claims.claim(clock.now, Reach(["telegram"]), 10, 15.0)
    assert [j.id for j in claimed] == [later.id]  # another process takes the new job
    stt.answer.set()
    assert await asyncio.wait_for(draining, 10) == 0
    done = await other.get(first.id)
    assert done is not None and done.state is JobState.COMPLETED and done.delivered_at
    assert [j.id for j, _ in out.delivered] == [first.id]
    assert stt.calls == 1  # the job that arrived during the drain was not started here
    await mine.close()
    await other.close()


@pytest.mark.parametrize("by", ["deadline", "second signal"])
async def test_drain_step_still_in_flight_is_cut_short_and_its_lease_released(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, by: str
) -> None:
    clock = FakeClock(1000.0)
    mine = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    other = await SqliteJobStore.open(tmp_path / "j.sqlite3")
    stt = HeldStt()  # never answers
    worker = job_worker(mine, stt={"held": stt}, tts={}, clock=clock, lease=15.0)
    worker.register("telegram", RecordingDeliverer())
    poller = Poller(mine.claims, worker, clock=clock, lease=15.0, max_idle=0.2)
    job = await mine.create(_new(), now=clock.now, input_blob=OGG)
    poller.start()
    await asyncio.wait_for(stt.started.wait(), 10)
    cut = asyncio.Event()
    if by == "second signal":
        asyncio.get_running_loop().call_later(0.1, cut.set)
    timeout = 0.2 if by == "deadline" else 60.0
    assert await asyncio.wait_for(poller.stop(timeout=timeout, cut=cut), 10) == 1
    assert "1 step(s) still in flight" in caplog.text and job.id in caplog.text
    stored = await other.get(job.id)
    assert stored is not None and stored.lease_owner is None  # free at once, not in 15 s
    assert stored.state is JobState.SUBMITTING  # settled as interrupted by the next to look
    await mine.close()
    await other.close()


class DrainedAdapter:
    """A platform stand-in for run_bot that records the order of its lifecycle calls."""

    platform = "telegram"

    def __init__(self, core: Core) -> None:
        self.core = core
        self.events: list[str] = []
        self.delivered = RecordingDeliverer()
        self._closed = asyncio.Event()
        self.quiesced = asyncio.Event()

    async def start(self) -> None:
        self.events.append("start")

    async def quiesce(self) -> None:
        self.events.append("quiesce")
        self.quiesced.set()

    async def stop(self) -> None:
        self.events.append("stop")
        self._closed.set()

    async def wait_disconnected(self) -> None:
        await self._closed.wait()

    @property
    def standby(self) -> bool:
        return False

    async def deliver(self, reply: Reply) -> str | None:
        self.events.append(f"deliver {reply.job.id}")
        return await self.delivered.deliver(reply)

    async def progress(self, job: Job) -> None:
        return None


async def _healthz(caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    line = next(x for x in caplog.messages if x.startswith("health: serving"))
    url = line.split()[2]
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, (await resp.json())["status"]


async def test_drain_run_bot_stops_intake_first_delivers_in_flight_then_disconnects(
    tmp_path: Path, nano: FakeNanoGpt, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    nano.sync_delay = 1.5
    config = make_config(tmp_path, nano_url=nano.url, shutdown={"grace_seconds": 20})
    adapters: list[DrainedAdapter] = []

    def make(core: Core) -> list[DrainedAdapter]:
        adapters.append(DrainedAdapter(core))
        return adapters

    stop = asyncio.Event()
    bot = asyncio.create_task(run_bot(config, make, stop=stop))
    for _ in range(500):
        if any(m.startswith("health: serving") for m in caplog.messages):
            break
        await asyncio.sleep(0.02)
    assert (await _healthz(caplog)) == (200, "ok")
    core = adapters[0].core
    new = NewJob(JobKind.STT, ORIGIN, "nanogpt", "Whisper-Large-V3", {}, 1e12, input_duration=1.0)
    job = await core.store.create(
        new, now=core.clock(), input_blob=Blob(make_tone(1.0), "a.ogg", "audio/ogg")
    )
    core.poller.wake()
    await nano.wait_for("transcribe", timeout=10)  # the provider call is in flight
    stop.set()
    await asyncio.wait_for(adapters[0].quiesced.wait(), 10)
    assert (await _healthz(caplog)) == (503, "draining")
    await asyncio.wait_for(bot, 30)
    assert adapters[0].events == ["start", "quiesce", f"deliver {job.id}", "stop"]
    assert nano.submits["transcribe"] == 1
    assert "1 step(s) still in flight" not in caplog.text
