"""What the local engines need from the job store and the texts, without the engines: input kept
for free reruns, lost runs requeued, crash recovery by capability and lease, progress shown. The
store half is part of the store contract: it runs against every backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.chat.replies import progress_text
from bot.chat.status import progress_eta, render_job, render_job_list
from bot.jobs.outcomes import progress_step
from bot.jobs.poller import Reach
from bot.jobs.steps import Completion, NextPoll, Submission
from bot.model.job import Blob, Job, JobKind, JobState, NewJob
from bot.model.speech import Origin
from bot.providers.base import PollResult, PollStatus
from bot.storage import open_store
from bot.storage.jobs import SqlJobStore
from bot.storage.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from bot.storage.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS
from testkit.support import old_postgres, old_sqlite

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


async def _submitted(store: SqlJobStore, *, keep_input: bool) -> Job:
    job = await store.create(new_job(), now=100.0, input_blob=Blob(b"OggS", "a.ogg", "audio/ogg"))
    assert await store.steps.begin_submit(job.id, 101.0)
    ticket = {"run": "r1"}
    assert await store.steps.mark_submitted(
        job.id, Submission(ticket, next_poll_at=102.0, keep_input=keep_input), 101.0
    )
    return job


async def test_store_keeps_input_while_submitted_only_when_asked(store: SqlJobStore) -> None:
    paid = await _submitted(store, keep_input=False)
    assert (
        await store.kept.load_blob(paid.id, "input") is None
    )  # hosted: dropped once the API has it
    free = await _submitted(store, keep_input=True)
    assert await store.kept.load_blob(free.id, "input") == Blob(b"OggS", "a.ogg", "audio/ogg")
    assert await store.steps.complete(free.id, Completion({"text": "hi"}, polled=True), 110.0)
    assert await store.kept.load_blob(free.id, "input") is None  # and dropped when the job ends


async def test_store_requeue_lost_only_for_kept_input(store: SqlJobStore) -> None:
    paid = await _submitted(store, keep_input=False)
    assert not await store.steps.requeue_lost(paid.id, 105.0)  # a paid run is never silently resent
    free = await _submitted(store, keep_input=True)
    assert await store.steps.reschedule(free.id, NextPoll(next_poll_at=106.0, progress=0.5), 105.0)
    assert await store.steps.requeue_lost(free.id, 107.0)
    again = await store.get(free.id)
    assert again is not None and again.state is JobState.QUEUED
    assert again.ticket is None and again.progress is None and again.next_poll_at == 107.0
    assert await store.kept.load_blob(free.id, "input") is not None
    assert not await store.steps.requeue_lost(free.id, 108.0)  # guarded: only from SUBMITTED


async def test_store_progress_is_kept_when_a_poll_does_not_report_it(
    store: SqlJobStore,
) -> None:
    job = await _submitted(store, keep_input=True)
    await store.steps.reschedule(job.id, NextPoll(next_poll_at=103.0, progress=0.4), 102.0)
    await store.steps.reschedule(job.id, NextPoll(next_poll_at=104.0), 103.0)
    stored = await store.get(job.id)
    assert stored is not None and stored.progress == pytest.approx(0.4)


async def test_store_recover_requeues_free_reruns_and_fails_the_rest(
    store: SqlJobStore,
) -> None:
    local = await store.create(new_job("local"), now=100.0, input_blob=Blob(b"x", None, None))
    hosted = await store.create(new_job("nanogpt"), now=100.0, input_blob=Blob(b"x", None, None))
    for job in (local, hosted):
        assert await store.steps.begin_submit(job.id, 101.0)
    failed = await store.claims.recover_interrupted(
        200.0, "interrupted", ["telegram"], rerun=lambda job: job.provider == "local"
    )
    assert failed == [hosted.id]
    requeued = await store.get(local.id)
    assert requeued is not None and requeued.state is JobState.QUEUED
    assert await store.kept.load_blob(local.id, "input") is not None


async def test_store_recover_waits_for_the_lease_then_requeues_a_free_rerun(
    store: SqlJobStore, target: str
) -> None:
    """The periodic recovery of another process: a live submit is never touched; once its lease
    expired, a free rerun goes back to the queue with its input, a paid one fails."""
    other = await open_store(target, pool_size=2)
    try:
        local = await other.create(new_job("local"), now=100.0, input_blob=Blob(b"x", None, None))
        hosted = await other.create(
            new_job("nanogpt"), now=100.0, input_blob=Blob(b"y", None, None)
        )
        assert (
            len(await other.claims.claim(100.0, Reach(["telegram"]), 10, lease=30.0)) == 2
        )  # until 130
        for job in (local, hosted):
            assert await other.steps.begin_submit(job.id, 101.0)
        free = lambda job: job.provider == "local"  # noqa: E731
        assert (
            await store.claims.recover_interrupted(120.0, "interrupted", ["telegram"], free) == []
        )
        assert (await store.get(local.id)).state is JobState.SUBMITTING  # type: ignore[union-attr]
        assert (
            await other.claims.recover_interrupted(200.0, "interrupted", ["telegram"], free) == []
        )
        failed = await store.claims.recover_interrupted(200.0, "interrupted", ["telegram"], free)
        assert failed == [hosted.id]
        again = await store.get(local.id)
        assert again is not None and again.state is JobState.QUEUED and again.lease_owner is None
        assert (
            again.next_poll_at == 200.0
            and await store.kept.load_blob(local.id, "input") is not None
        )
        assert not await other.steps.mark_submitted(
            local.id, Submission({"run": "late"}, next_poll_at=1), 201
        )
    finally:
        await other.close()


async def test_store_requeue_lost_respects_another_owners_lease(
    store: SqlJobStore, target: str
) -> None:
    job = await _submitted(store, keep_input=True)
    other = await open_store(target, pool_size=2)
    try:
        assert [
            j.id for j in await other.claims.claim(102.0, Reach(["telegram"]), 10, lease=30.0)
        ] == [job.id]
        assert not await store.steps.requeue_lost(job.id, 103.0)  # the poll step is the other's
        assert await other.steps.requeue_lost(job.id, 103.0)
    finally:
        await other.close()
    again = await store.get(job.id)
    assert again is not None and again.state is JobState.QUEUED and again.lease_owner is None


async def test_store_local_run_is_polled_by_its_own_process_until_that_one_is_gone(
    store: SqlJobStore, target: str
) -> None:
    """A local engine's run lives in the process that started it: another process must not poll
    it (it would find no run and start it again) unless that process stopped polling it."""
    other = await open_store(target, pool_size=2)
    try:
        home = await other.create(new_job("local"), now=100.0, input_blob=Blob(b"x", None, None))
        paid = await other.create(new_job("nanogpt"), now=100.0, input_blob=Blob(b"y", None, None))
        assert len(await other.claims.claim(100.0, Reach(["telegram"]), 10, lease=30.0)) == 2
        for job, keep in ((home, True), (paid, False)):
            assert await other.steps.begin_submit(job.id, 101.0)
            assert await other.steps.mark_submitted(
                job.id, Submission({"run": "r"}, next_poll_at=110.0, keep_input=keep), 101.0
            )
        assert [
            j.id for j in await store.claims.claim(111.0, Reach(["telegram"]), 10, lease=30.0)
        ] == [paid.id]
        assert await store.cancel(paid.id, 111.0) is not None  # only the local run is left
        assert await store.claims.next_wakeup(Reach(["telegram"])) == pytest.approx(170.0)
        assert [
            j.id for j in await other.claims.claim(111.0, Reach(["telegram"]), 10, lease=30.0)
        ] == [home.id]
        assert await other.steps.reschedule(
            home.id, NextPoll(next_poll_at=120.0, progress=0.2), 111.0
        )
        assert await other.claims.next_wakeup(Reach(["telegram"])) == pytest.approx(120.0)
        assert await store.claims.claim(179.0, Reach(["telegram"]), 10, lease=30.0) == []
        taken = await store.claims.claim(
            180.0, Reach(["telegram"]), 10, lease=30.0
        )  # a minute overdue
        assert [j.id for j in taken] == [home.id]
        assert await store.steps.requeue_lost(home.id, 180.0)
    finally:
        await other.close()


async def test_store_cancel_drops_the_kept_input(store: SqlJobStore) -> None:
    job = await _submitted(store, keep_input=True)
    assert await store.cancel(job.id, 103.0) is not None
    assert await store.kept.load_blob(job.id, "input") is None


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
    assert "expected in: about 30 sec" in render_job(job, 1020.0)  # 20 s for 40 %: 30 s to go
    assert "ab12cd STT transcribing, 20 sec ago, 40 %" in render_job_list([job], 1020.0)
    assert progress_text(_running(None)) == "🎙 Transcribing… job ab12cd"


def test_progress_eta_needs_a_measurable_share() -> None:
    assert progress_eta(_running(0.01), 1020.0) is None  # too early to extrapolate
    assert progress_eta(_running(0.5), 1020.0) == pytest.approx(1040.0)


def test_progress_step_edits_the_placeholder_every_ten_percent_only() -> None:
    def poll(share: float | None) -> PollResult:
        return PollResult(PollStatus.RUNNING, progress=share)

    assert progress_step(_running(None), poll(0.0))  # first measurement
    assert not progress_step(_running(0.41), poll(0.49))
    assert progress_step(_running(0.49), poll(0.5))
    assert not progress_step(_running(0.3), poll(None))


async def test_store_sqlite_database_from_schema_v8_gains_progress_and_keep_input(
    tmp_path: Path,
) -> None:
    """The storage release's schema (v8): its submitted job polls on, its input still dropped."""
    path = tmp_path / "v8.sqlite3"
    old_sqlite(path, 8)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, platform, chat_id, user_id, provider, model, state, "
            "deadline_at, created_at, updated_at, next_poll_at) VALUES ('abc234', 'stt', "
            "'telegram', '42', '7', 'local', 'base', 'submitting', 5000, 1, 2, 3)"
        )
        conn.execute("INSERT INTO job_blobs (job_id, role, data) VALUES ('abc234', 'input', x'00')")
    store = await open_store(str(path), pool_size=2)
    try:
        assert await store.steps.mark_submitted(
            "abc234", Submission({"run": "r"}, next_poll_at=9.0), 4.0
        )
        job = await store.get("abc234")
        assert job is not None and job.progress is None
        assert await store.kept.load_blob("abc234", "input") is None  # keep_input defaults to off
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(SQLITE_MIGRATIONS) == 14


async def test_store_postgres_database_from_schema_v2_gains_progress_and_keep_input(
    pg_url: str,
) -> None:
    await old_postgres(pg_url, 2)
    store = await open_store(pg_url, pool_size=2)
    try:
        free = await _submitted(store, keep_input=True)
        assert await store.kept.load_blob(free.id, "input") is not None
        assert await store.steps.reschedule(
            free.id, NextPoll(next_poll_at=103.0, progress=0.3), 102.0
        )
        assert (await store.get(free.id)).progress == pytest.approx(0.3)  # type: ignore[union-attr]
    finally:
        await store.close()
    assert len(PG_MIGRATIONS) == 8  # later: job_parts, unique_key, user_settings, job_counts, links
