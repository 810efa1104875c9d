"""Predictive polling: learns provider speed, persists it, polls at the predicted finish."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from bot.jobs.schedule import (
    BackoffSchedule,
    PredictiveSchedule,
    SpeedFit,
    interval_mean,
    margin,
)
from bot.model.job import Job, JobKind, JobState
from bot.model.speech import Origin
from bot.storage.sqlite import SqliteJobStore
from testkit.support import FakeClock


def stt_job(duration: float, submitted_at: float, **kw: object) -> Job:
    base = Job(
        id="abcdef",
        kind=JobKind.STT,
        origin=Origin("test", "c", "u"),
        provider="nanogpt",
        model="Elevenlabs-STT",
        options={},
        state=JobState.SUBMITTED,
        created_at=submitted_at,
        updated_at=submitted_at,
        deadline_at=submitted_at + 1800,
        input_duration=duration,
        submitted_at=submitted_at,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_speed_fit_learns_overhead_and_rate() -> None:
    fit = SpeedFit()
    for x in (5, 10, 20, 40, 60, 15, 30) * 4:
        fit.update(float(x), 1.0 + 0.2 * x)
    assert fit.predict(100.0) == pytest.approx(21.0, rel=0.01)
    assert fit.predict(0.0) == pytest.approx(1.0, abs=0.05)
    assert fit.dev < 0.05


def test_speed_fit_same_sizes_scales_rate() -> None:
    fit = SpeedFit()
    for _ in range(3):
        fit.update(10.0, 4.0)
    assert fit.predict(20.0) == pytest.approx(8.0)


def test_speed_fit_follows_a_provider_that_slows_down() -> None:
    fit = SpeedFit()
    for _ in range(10):
        fit.update(10.0, 2.0)
    for _ in range(10):
        fit.update(10.0, 6.0)
    prediction = fit.predict(10.0)
    assert prediction is not None and prediction > 5.5


async def _learn(schedule: PredictiveSchedule, clock: FakeClock, n: int, rate: float) -> None:
    for i in range(n):
        duration = 10.0 + 5 * i
        start = clock.now
        job = stt_job(duration, start)
        done = start + rate * duration
        # the last poll that said "pending" was 0.2 s before completion
        await schedule.observe(replace(job, updated_at=done - 0.2, poll_count=1), done + 0.2)
        clock.now = done + 1


async def test_predictive_schedule_polls_at_predicted_finish_and_persists(tmp_path: Path) -> None:
    clock = FakeClock()
    store = await SqliteJobStore.open(tmp_path / "s.sqlite3")
    try:
        schedule = PredictiveSchedule(store.usage, clock)
        fresh = stt_job(30.0, clock.now)
        fallback = BackoffSchedule(jitter=0.0)
        assert schedule.eta(fresh) is None
        assert 0.9 <= schedule.first_poll(fresh, 1.0) <= 1.1  # no data yet: backoff
        await _learn(schedule, clock, 6, rate=0.3)
        job = stt_job(40.0, clock.now)
        assert schedule.expected_finish(job) == pytest.approx(clock.now + 12.0, rel=0.05)
        first = schedule.first_poll(job, 1.0)
        assert 10.0 <= first <= 14.0  # about the predicted finish, give or take its error
        assert schedule.eta(job) == pytest.approx(clock.now + 12.0, rel=0.01)
        assert schedule.first_poll(job, 25.0) == 25.0  # provider minimum wins
        clock.now += 12.5  # polled at the prediction, still pending
        nxt = schedule.next_poll(replace(job, poll_count=0), 1.0, None)
        assert 0.5 <= nxt <= 2.0
        assert schedule.next_poll(job, 1.0, 9.0) == 9.0  # Retry-After wins
        clock.now += 600  # very late: backoff grows but stays capped
        assert schedule.next_poll(job, 1.0, None) == 30.0
        queued = replace(job, queue_position=3)
        assert schedule.first_poll(queued, 1.0) > schedule.first_poll(job, 1.0)
        assert fallback.eta(job) is None
    finally:
        await store.close()
    reopened = await SqliteJobStore.open(tmp_path / "s.sqlite3")
    try:
        again = PredictiveSchedule(reopened.usage, clock)
        await again.load()
        assert again.first_poll(stt_job(40.0, clock.now), 1.0) == pytest.approx(first)
    finally:
        await reopened.close()


class _Speeds:
    """An in-memory speed store (the SQLite one is covered above)."""

    def __init__(self) -> None:
        self.saved: dict[tuple[str, str, str], dict[str, float]] = {}

    async def load_speed_stats(self) -> dict[tuple[str, str, str], dict[str, float]]:
        return dict(self.saved)

    async def save_speed_stats(
        self, key: tuple[str, str, str], values: dict[str, float], now: float
    ) -> None:
        self.saved[key] = dict(values)


async def _poll_like_the_worker(
    schedule: PredictiveSchedule, clock: FakeClock, job: Job, finish: float, minimum: float
) -> int:
    """Poll one job as the worker would until it is done; return how many polls it took."""
    clock.now = job.created_at + schedule.first_poll(job, minimum)
    polls = 1
    while clock.now < finish:
        delay = schedule.next_poll(job, minimum, None)
        job = replace(job, poll_count=job.poll_count + 1, updated_at=clock.now)
        clock.now += delay
        polls += 1
    await schedule.observe(job, clock.now)
    return polls


async def test_hits_at_the_first_poll_do_not_drag_the_estimate_down() -> None:
    """A job done at its first poll only says "before now": the estimate must hold, not halve."""
    clock = FakeClock()
    schedule = PredictiveSchedule(_Speeds(), clock)
    noise = random.Random(0)  # deterministic: 10 % lognormal noise on 0.3 s per audio second
    for i in range(60):
        start = clock.now = 1000.0 * (i + 1)
        duration = 10.0 + (i % 5) * 10
        finish = start + 0.3 * duration * noise.lognormvariate(0.0, 0.1)
        await _poll_like_the_worker(schedule, clock, stt_job(duration, start), finish, 0.0)
    # Taking the midpoint of (upload, first poll] for hits settled 8 % low here; within 5 % now.
    assert schedule.expected_finish(stt_job(40.0, 0.0)) == pytest.approx(12.0, rel=0.05)


async def test_first_poll_waits_longer_when_a_miss_is_expensive() -> None:
    clock = FakeClock()
    schedule = PredictiveSchedule(_Speeds(), clock)
    await _learn(schedule, clock, 6, rate=0.3)
    job = stt_job(40.0, clock.now)
    cheap, dear = schedule.first_poll(job, 0.0), schedule.first_poll(job, 5.0)
    assert cheap < dear and dear >= 12.0  # a miss costing 5 s: poll after the expected finish


def test_margin_and_interval_mean() -> None:
    assert margin(1.0, 0.5) < margin(1.0, 5.0) <= 3.0
    assert interval_mean(10.0, 1.0, 0.0, 100.0) == pytest.approx(10.0, abs=1e-6)
    below = interval_mean(10.0, 1.0, 0.0, 10.0)  # done before the mean: earlier than it
    assert 8.5 < below < 10.0
    assert interval_mean(10.0, 1.0, 30.0, 31.0) == pytest.approx(30.5)  # far outside: midpoint


async def test_a_burst_of_completions_is_saved_once_and_flushed_at_shutdown() -> None:
    clock = FakeClock()
    speeds = _Speeds()
    schedule = PredictiveSchedule(speeds, clock)
    key = ("nanogpt", "Elevenlabs-STT", "stt")
    for _ in range(5):  # five completions within one second
        job = stt_job(10.0, clock.now, poll_count=1, updated_at=clock.now + 2.8)
        await schedule.observe(job, clock.now + 3.0)
        clock.now += 0.2
    assert speeds.saved[key]["samples"] == 1  # the first one, straight away
    await schedule.flush()
    assert speeds.saved[key]["samples"] == 5


async def test_queue_places_are_priced_from_how_fast_positions_drop() -> None:
    clock = FakeClock()
    schedule = PredictiveSchedule(_Speeds(), clock)
    await _learn(schedule, clock, 6, rate=0.3)  # 40 s of audio: 12 s of processing
    now = clock.now
    job = stt_job(40.0, now - 5.0, queue_position=6, updated_at=now - 5.0)
    # Before any queue has been seen move, a place is priced as one average job.
    average = schedule.expected_finish(job)
    assert average is not None and average > now - 5.0 + 6 * 5.0 + 12.0
    # Far back in the queue, the next look is after a couple of places, not at the far estimate.
    assert schedule.next_poll(replace(job, updated_at=now), 0.0, None) < average - now
    # Polled now: four places went by in 5 s.
    schedule.observe_queue(job, 2, now)
    moved = replace(job, queue_position=2, updated_at=now)
    assert schedule.expected_finish(moved) == pytest.approx(now + 2 * 1.25 + 12.0, rel=0.02)
    assert schedule.next_poll(moved, 0.0, None) == pytest.approx(2 * 1.25 + 12.0, rel=0.02)
    # A queue that does not move teaches nothing (no division by zero either).
    schedule.observe_queue(moved, 2, now + 3.0)
    assert schedule.expected_finish(moved) == pytest.approx(now + 2 * 1.25 + 12.0, rel=0.02)


async def test_a_queued_job_finishing_early_lowers_the_place_price_not_the_speed() -> None:
    clock = FakeClock()
    schedule = PredictiveSchedule(_Speeds(), clock)
    await _learn(schedule, clock, 6, rate=0.3)
    plain = stt_job(40.0, clock.now)
    before = schedule.expected_finish(plain)
    # Last seen 3 places back; done 18 s later. With 12 s of processing, a place took at most 2 s
    # (the prior said one average job, 5 to 10 s).
    queued = stt_job(40.0, clock.now, queue_position=3, poll_count=1)
    await schedule.observe(queued, clock.now + 18.0)
    assert schedule.expected_finish(plain) == before  # not a processing sample
    finish = schedule.expected_finish(queued)
    assert finish == pytest.approx(clock.now + 3 * 2.0 + 12.0, rel=0.02)


async def test_learned_place_price_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    store = await SqliteJobStore.open(tmp_path / "s.sqlite3")
    try:
        schedule = PredictiveSchedule(store.usage, clock, save_every=0.0)
        await _learn(schedule, clock, 3, rate=0.3)
        job = stt_job(40.0, clock.now, queue_position=5)
        schedule.observe_queue(job, 1, clock.now + 6.0)  # 1.5 s per place
        await schedule.observe(stt_job(20.0, clock.now, poll_count=1), clock.now + 6.2)
        expected = schedule.expected_finish(job)
    finally:
        await store.close()
    reopened = await SqliteJobStore.open(tmp_path / "s.sqlite3")
    try:
        again = PredictiveSchedule(reopened.usage, clock)
        await again.load()
        assert again.expected_finish(job) == pytest.approx(expected)
    finally:
        await reopened.close()
