"""Cancel in the store and the worker: final, guarded, never sent when cancelled before submit."""

from __future__ import annotations

from pathlib import Path

from bot.jobs.models import JobState
from bot.jobs.store import Blob, SqliteJobStore
from tests.fakes.providers import FakeNanoGpt
from tests.test_faults import bench
from tests.test_store import new_job


async def test_store_cancel_queued_is_final_across_restart(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await SqliteJobStore.open(path)
    job = await store.create(new_job(), now=100.0, input_blob=Blob(b"x", None, None))
    cancelled = await store.cancel(job.id, 110.0)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert cancelled.completed_at == 110.0 and cancelled.error_code == "cancelled"
    assert await store.load_blob(job.id, "input") is None  # the audio goes with it
    assert await store.cancel(job.id, 111.0) is None  # already final
    assert not await store.begin_submit(job.id, 112.0)
    await store.close()
    store = await SqliteJobStore.open(path)
    try:
        again = await store.get(job.id)
        assert again is not None and again.state is JobState.CANCELLED
        assert await store.due(200.0, ["telegram"]) == []
        assert await store.undelivered(200.0, ["telegram"]) == []
    finally:
        await store.close()


async def test_store_cancel_is_not_overwritten_by_a_late_submit_or_poll(tmp_path: Path) -> None:
    store = await SqliteJobStore.open(tmp_path / "jobs.sqlite3")
    try:
        job = await store.create(new_job(), now=100.0, input_blob=Blob(b"x", None, None))
        assert await store.begin_submit(job.id, 101.0)
        assert await store.cancel(job.id, 102.0) is not None  # while the upload is in flight
        assert not await store.mark_submitted(job.id, {"runId": "r"}, next_poll_at=1, now=103)
        assert not await store.complete(job.id, {"text": "late"}, now=103.0)
        assert not await store.fail(job.id, "late", now=103.0)
        assert not await store.requeue(job.id, 104.0, 103.0)
        final = await store.get(job.id)
        assert final is not None and final.state is JobState.CANCELLED and final.result is None
        other = await store.create(new_job(), now=100.0, input_blob=Blob(b"x", None, None))
        await store.begin_submit(other.id, 101.0)
        await store.mark_submitted(other.id, {"runId": "r2"}, next_poll_at=105.0, now=102.0)
        assert await store.cancel(other.id, 103.0) is not None
        assert not await store.reschedule(other.id, next_poll_at=110.0, now=104.0)
        assert not await store.complete(other.id, {"text": "late"}, now=104.0, polled=True)
    finally:
        await store.close()


async def test_store_purge_removes_old_cancelled_jobs(tmp_path: Path) -> None:
    store = await SqliteJobStore.open(tmp_path / "jobs.sqlite3")
    try:
        job = await store.create(new_job(), now=100.0, input_blob=Blob(b"x", None, None))
        await store.cancel(job.id, 110.0)
        assert await store.purge(before=105.0) == 0
        assert await store.purge(before=200.0) == 1
    finally:
        await store.close()


async def test_worker_unreachable_provider_tells_chat_it_is_retried(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    async with bench(tmp_path, "http://127.0.0.1:9/api") as b:
        job = await b.stt()
        await b.core.poller.run_once()
        [note] = b.out.progressed
        assert note.id == job.id and note.state is JobState.QUEUED
        assert note.error == (
            "The speech service can't be reached right now. It will be retried automatically."
        )
        stored = await b.core.store.get(job.id)
        assert stored is not None and stored.error is None  # a note, not a stored failure


async def test_worker_deadline_message_states_seconds(tmp_path: Path, nano: FakeNanoGpt) -> None:
    config = {"deadline_seconds": 15, "max_poll_interval": 2}
    async with bench(tmp_path, nano.url, stt={"model": "Elevenlabs-STT"}, jobs=config) as b:
        nano.polls_to_complete = 10**9
        await b.stt()
        await b.drive(steps=100)
        done = await b.only_result()
        assert done.error == (
            "The speech service did not finish within 15 seconds, so the job was stopped."
        )


async def test_worker_unreachable_until_deadline_says_so_not_a_wrong_duration(
    tmp_path: Path,
) -> None:
    config = {"deadline_seconds": 15, "max_poll_interval": 4}
    async with bench(tmp_path, "http://127.0.0.1:9/api", jobs=config) as b:
        await b.stt()
        await b.drive(steps=50)
        done = await b.only_result()
        assert done.state is JobState.FAILED
        assert done.error == "The speech service can't be reached right now."
        assert len(b.out.progressed) >= 2  # the chat was told it is being retried meanwhile


async def test_worker_unreachable_while_polling_tells_chat_it_is_retried(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    nano.polls_to_complete = 10**6
    async with bench(tmp_path, nano.url, stt={"model": "Elevenlabs-STT"}) as b:
        job = await b.stt()
        await b.core.poller.run_once()
        submitted = await b.core.store.get(job.id)
        assert submitted is not None and submitted.state is JobState.SUBMITTED
    # Same database, but the provider's host no longer answers (restart with a dead URL).
    async with bench(tmp_path, "http://127.0.0.1:9/api", stt={"model": "Elevenlabs-STT"}) as b:
        b.clock.now = submitted.next_poll_at or b.clock.now
        await b.drive(steps=3)
        notes = [j for j in b.out.progressed if j.error]
        assert notes and notes[0].state is JobState.SUBMITTED
        assert "can't be reached" in (notes[0].error or "")
        assert notes[0].extra["retry"]["sent"] is True
