"""A wall-clock step while jobs are in flight (NTP at boot, a manual change) moves their stored
times with it: no job waits out a step back, none fails as overdue after a step forward."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.core import Core
from bot.jobs.poller import ClockWatch
from bot.model.job import JobState
from bot.model.speech import Origin
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import FakeClock, RecordingDeliverer, make_config

ORIGIN = Origin(platform="test", chat_id="chat-1", user_id="user-1", reply_to="m-1")


class SteppableClock:
    """The real wall clock, plus a step the test can change at any moment."""

    def __init__(self) -> None:
        self.step = 0.0

    def __call__(self) -> float:
        return time.time() + self.step


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese, wall: SteppableClock
) -> AsyncIterator[tuple[Core, RecordingDeliverer]]:
    """A core on ``wall`` whose poller watches it against the monotonic clock, running."""
    config = make_config(
        tmp_path, nano_url=nano.url, canto_url=canto.url, stt={"model": "Elevenlabs-STT"}
    )
    core = await Core.open(config, clock=wall, steady=time.monotonic)
    out = RecordingDeliverer()
    core.worker.register("test", out)
    core.poller.start()
    try:
        yield core, out
    finally:
        await core.poller.stop()
        await core.close()


@pytest.mark.parametrize("step", [-3600.0, 7200.0], ids=["back-an-hour", "forward-two-hours"])
async def test_clock_step_moves_job_times(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese, step: float
) -> None:
    nano.polls_to_complete = 1
    nano.processing_delay = 0.0
    wall = SteppableClock()
    async with running(tmp_path, nano, canto, wall) as (core, out):
        job = await core.service.transcribe(ORIGIN, make_tone(2.0, "ogg"), "voice.ogg")
        await out.wait_progress(1)  # the provider took it; its times are stored
        before = await core.store.get(job.id)
        assert before is not None and before.state is JobState.SUBMITTED
        wall.step = step
        core.poller.wake()
        # Back: unmoved, the first poll would wait an hour. Forward: unmoved, the job would be
        # past its 30-minute deadline and fail.
        await out.wait(1, timeout=15)
        delivered, _clip = out.delivered[0]
        assert delivered.state is JobState.COMPLETED, delivered.error
        after = await core.store.get(job.id)
        assert after is not None and after.submitted_at is not None
        assert before.submitted_at is not None
        assert after.created_at == pytest.approx(before.created_at + step, abs=0.01)
        assert after.submitted_at == pytest.approx(before.submitted_at + step, abs=0.01)
        assert after.deadline_at == pytest.approx(before.deadline_at + step, abs=0.01)
    assert sum(nano.polls.values()) == 1  # no early polls either


def test_clock_watch_follows_drift_and_reports_a_step_until_followed() -> None:
    wall, steady = FakeClock(1_000.0), FakeClock(50.0)
    watch = ClockWatch(wall, steady, tolerance=2.0)
    wall.advance(10.0)
    steady.advance(10.5)  # half a second of drift: followed, not a step
    assert watch.step() == 0.0
    wall.advance(-30.0)
    assert watch.step() == pytest.approx(-30.0)
    assert watch.step() == pytest.approx(-30.0)  # still there: nobody dealt with it
    watch.followed(-30.0)
    assert watch.step() == 0.0
    steady.advance(100.0)
    wall.advance(100.0)
    assert watch.step() == 0.0
