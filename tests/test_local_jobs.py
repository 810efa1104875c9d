"""What the local engines need from the job store and the texts, without the engines: input kept
for free reruns, lost runs requeued, crash recovery by capability, progress shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.models import Job, JobKind, JobState
from bot.jobs.store import Blob, NewJob, SqliteJobStore
from bot.jobs.worker import _progress_step
from bot.models import Origin
from bot.providers.base import PollResult, PollStatus
from bot.replies import progress_text
from bot.status import progress_eta, render_job, render_job_list

ORIGIN = Origin(platform="telegram", chat_id="42", user_id="7")


def new_job(provider: str = "local") -> NewJob:
    return NewJob(
        kind=JobKind.STT,
        origin=ORIGIN,
        provider=provider,
        model="base",
        options={"language": "auto"},
        deadline_at=5000.0,
        input_duration=60.0,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteJobStore]:
    s = await SqliteJobStore.open(tmp_path / "jobs.sqlite3")
    yield s
    await s.close()


async def _submitted(store: SqliteJobStore, *, keep_input: bool) -> Job:
    job = await store.create(new_job(), now=100.0, input_blob=Blob(b"OggS", "a.ogg", "audio/ogg"))
    assert await store.begin_submit(job.id, 101.0)
    ticket = {"run": "r1"}
    assert await store.mark_submitted(
        job.id, ticket, next_poll_at=102.0, now=101.0, keep_input=keep_input
    )
    return job


async def test_store_keeps_input_while_submitted_only_when_asked(store: SqliteJobStore) -> None:
    paid = await _submitted(store, keep_input=False)
    assert await store.load_blob(paid.id, "input") is None  # hosted: dropped once the API has it
    free = await _submitted(store, keep_input=True)
    assert await store.load_blob(free.id, "input") == Blob(b"OggS", "a.ogg", "audio/ogg")
    assert await store.complete(free.id, {"text": "hi"}, now=110.0, polled=True)
    assert await store.load_blob(free.id, "input") is None  # and dropped when the job ends


async def test_store_requeue_lost_only_for_kept_input(store: SqliteJobStore) -> None:
    paid = await _submitted(store, keep_input=False)
    assert not await store.requeue_lost(paid.id, 105.0)  # a paid run is never silently resent
    free = await _submitted(store, keep_input=True)
    assert await store.reschedule(free.id, next_poll_at=106.0, now=105.0, progress=0.5)
    assert await store.requeue_lost(free.id, 107.0)
    again = await store.get(free.id)
    assert again is not None and again.state is JobState.QUEUED
    assert again.ticket is None and again.progress is None and again.next_poll_at == 107.0
    assert await store.load_blob(free.id, "input") is not None
    assert not await store.requeue_lost(free.id, 108.0)  # guarded: only from SUBMITTED


async def test_store_progress_is_kept_when_a_poll_does_not_report_it(
    store: SqliteJobStore,
) -> None:
    job = await _submitted(store, keep_input=True)
    await store.reschedule(job.id, next_poll_at=103.0, now=102.0, progress=0.4)
    await store.reschedule(job.id, next_poll_at=104.0, now=103.0)
    stored = await store.get(job.id)
    assert stored is not None and stored.progress == pytest.approx(0.4)


async def test_store_recover_requeues_free_reruns_and_fails_the_rest(
    store: SqliteJobStore,
) -> None:
    local = await store.create(new_job("local"), now=100.0, input_blob=Blob(b"x", None, None))
    hosted = await store.create(new_job("nanogpt"), now=100.0, input_blob=Blob(b"x", None, None))
    for job in (local, hosted):
        assert await store.begin_submit(job.id, 101.0)
    failed = await store.recover_interrupted(
        200.0, "interrupted", ["telegram"], rerun=lambda job: job.provider == "local"
    )
    assert failed == [hosted.id]
    requeued = await store.get(local.id)
    assert requeued is not None and requeued.state is JobState.QUEUED
    assert await store.load_blob(local.id, "input") is not None


def _running(progress: float | None) -> Job:
    return Job(
        id="ab12cd",
        kind=JobKind.STT,
        origin=ORIGIN,
        provider="local",
        model="base",
        options={"language": "auto"},
        state=JobState.SUBMITTED,
        created_at=1000.0,
        updated_at=1030.0,
        deadline_at=5000.0,
        submitted_at=1000.0,
        input_duration=60.0,
        progress=progress,
    )


def test_progress_shows_in_placeholder_status_and_list() -> None:
    job = _running(0.4)
    assert progress_text(job) == "🎙 Transcribing… 40 % job ab12cd"
    assert "progress: 40 %" in render_job(job, 1020.0)
    assert "expected in: about 30s" in render_job(job, 1020.0)  # 20 s for 40 %: 30 s to go
    assert "ab12cd STT transcribing, 20s ago, 40 %" in render_job_list([job], 1020.0)
    assert progress_text(_running(None)) == "🎙 Transcribing… job ab12cd"


def test_progress_eta_needs_a_measurable_share() -> None:
    assert progress_eta(_running(0.01), 1020.0) is None  # too early to extrapolate
    assert progress_eta(_running(0.5), 1020.0) == pytest.approx(1040.0)


def test_progress_step_edits_the_placeholder_every_ten_percent_only() -> None:
    def poll(share: float | None) -> PollResult:
        return PollResult(PollStatus.RUNNING, progress=share)

    assert _progress_step(_running(None), poll(0.0))  # first measurement
    assert not _progress_step(_running(0.41), poll(0.49))
    assert _progress_step(_running(0.49), poll(0.5))
    assert not _progress_step(_running(0.3), poll(None))
