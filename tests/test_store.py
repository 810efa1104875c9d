"""SqliteJobStore on a real file: guarded transitions, restart, privacy of the file, queries."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.jobs.models import JobKind, JobState
from bot.jobs.store import Blob, NewJob, SqliteJobStore
from bot.models import Origin

ORIGIN = Origin(platform="telegram", chat_id="42", user_id="7", reply_to="99", extra={"k": 1})


def new_job(**kw: object) -> NewJob:
    base: dict[str, object] = {
        "kind": JobKind.STT,
        "origin": ORIGIN,
        "provider": "nanogpt",
        "model": "Elevenlabs-STT",
        "options": {"language": "auto", "diarize": True},
        "deadline_at": 5000.0,
        "input_duration": 3.5,
    }
    base.update(kw)
    return NewJob(**base)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = await SqliteJobStore.open(tmp_path / "db" / "jobs.sqlite3")
    yield s
    await s.close()


async def test_store_file_is_private(store: SqliteJobStore) -> None:
    mode = stat.S_IMODE(store.path.stat().st_mode)
    assert mode == 0o600


async def test_store_create_roundtrip_keeps_origin_and_input(store: SqliteJobStore) -> None:
    job = await store.create(
        new_job(), now=100.0, input_blob=Blob(b"OggS...", "a.ogg", "audio/ogg")
    )
    assert len(job.id) == 6 and job.id.isalnum()
    assert job.state is JobState.QUEUED and job.next_poll_at == 100.0
    assert job.origin == ORIGIN
    assert job.input_bytes == 7
    blob = await store.load_blob(job.id, "input")
    assert blob == Blob(b"OggS...", "a.ogg", "audio/ogg")


async def test_store_transitions_are_guarded(store: SqliteJobStore) -> None:
    job = await store.create(new_job(), now=100.0, input_blob=Blob(b"x", None, None))
    assert await store.begin_submit(job.id, 101.0)
    assert not await store.begin_submit(job.id, 101.5)  # already submitting
    assert await store.mark_submitted(job.id, {"runId": "r1"}, next_poll_at=105.0, now=102.0)
    assert not await store.mark_submitted(job.id, {"runId": "r2"}, next_poll_at=1.0, now=102.0)
    assert await store.load_blob(job.id, "input") is None  # provider has it: audio dropped
    loaded = await store.get(job.id)
    assert loaded is not None and loaded.ticket == {"runId": "r1"}
    assert await store.complete(job.id, {"text": "hi"}, now=110.0, cost=0.01, currency="USD")
    assert not await store.fail(job.id, "late failure", now=111.0)  # terminal stays terminal
    done = await store.get(job.id)
    assert done is not None and done.state is JobState.COMPLETED and done.cost == 0.01
    assert await store.mark_delivered(job.id, "m1", 112.0)
    assert not await store.mark_delivered(job.id, "m2", 113.0)  # exactly once
    final = await store.get(job.id)
    assert final is not None and final.delivery_message_id == "m1"


async def test_store_survives_reopen_mid_job(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await SqliteJobStore.open(path)
    job = await store.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    await store.begin_submit(job.id, 2.0)
    await store.mark_submitted(job.id, {"runId": "abc", "cost": 0.2}, next_poll_at=9.0, now=3.0)
    await store.close()
    reopened = await SqliteJobStore.open(path)
    try:
        due = await reopened.due(10.0, ["telegram"])
        assert [j.id for j in due] == [job.id]
        assert due[0].ticket == {"runId": "abc", "cost": 0.2}
        assert await reopened.due(8.0, ["telegram"]) == []
        assert await reopened.due(10.0, ["discord"]) == []
    finally:
        await reopened.close()


async def test_store_due_queries_leave_out_running_steps_and_keep_order(
    store: SqliteJobStore,
) -> None:
    jobs = [await store.create(new_job(), now=float(t)) for t in (3, 1, 2)]
    oldest_first = [jobs[1].id, jobs[2].id, jobs[0].id]
    assert [j.id for j in await store.due(10.0, ["telegram"])] == oldest_first
    assert [j.id for j in await store.due(10.0, ["telegram"], 2, [jobs[1].id])] == oldest_first[1:]
    assert await store.due(10.0, ["telegram"], 5, [j.id for j in jobs]) == []
    for job in jobs:
        await store.fail(job.id, "no", now=20.0 + len(job.id))
    assert len(await store.undelivered(30.0, ["telegram"], exclude=[jobs[0].id])) == 2


async def test_store_input_audio_goes_with_every_way_out_of_the_queue(
    store: SqliteJobStore,
) -> None:
    """The schema's trigger drops input audio in the statement that moves the job on."""
    blob = Blob(b"audio", "a.ogg", "audio/ogg")
    failed = await store.create(new_job(), now=1.0, input_blob=blob)
    requeued = await store.create(new_job(), now=1.0, input_blob=blob)
    await store.begin_submit(requeued.id, 2.0)
    await store.requeue(requeued.id, 5.0, 2.5)
    assert await store.fail(failed.id, "too late", now=3.0)
    assert await store.load_blob(failed.id, "input") is None
    assert await store.load_blob(requeued.id, "input") == blob  # not sent yet: kept for retry
    interrupted = await store.create(new_job(), now=1.0, input_blob=blob)
    await store.begin_submit(interrupted.id, 2.0)
    assert await store.recover_interrupted(4.0, "interrupted", ["telegram"]) == [interrupted.id]
    assert await store.load_blob(interrupted.id, "input") is None


async def test_store_recover_interrupted_fails_only_submitting_of_own_platforms(
    store: SqliteJobStore,
) -> None:
    a = await store.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    b = await store.create(new_job(), now=1.0)
    other = await store.create(
        new_job(origin=Origin("discord", "c", "u")), now=1.0, input_blob=Blob(b"x", None, None)
    )
    await store.begin_submit(a.id, 2.0)
    await store.begin_submit(other.id, 2.0)
    ids = await store.recover_interrupted(3.0, "interrupted!", ["telegram"])
    assert ids == [a.id]
    got = await store.get(a.id)
    assert got is not None and got.state is JobState.FAILED and got.error == "interrupted!"
    untouched = await store.get(b.id)
    assert untouched is not None and untouched.state is JobState.QUEUED
    still = await store.get(other.id)
    assert still is not None and still.state is JobState.SUBMITTING
    assert await store.load_blob(a.id, "input") is None


async def test_store_chat_queries_are_scoped(store: SqliteJobStore) -> None:
    mine = await store.create(new_job(), now=1.0)
    theirs = await store.create(new_job(origin=Origin("telegram", "43", "8")), now=2.0)
    assert await store.find_for_chat("telegram", "42", mine.id) is not None
    assert await store.find_for_chat("telegram", "42", theirs.id) is None
    assert await store.find_for_chat("telegram", "42", mine.id.upper()) is not None
    recent = await store.recent_for_chat("telegram", "42")
    assert [j.id for j in recent] == [mine.id]
    assert [j.id for j in await store.recent(10)] == [theirs.id, mine.id]


async def test_store_undelivered_and_deferral(store: SqliteJobStore) -> None:
    job = await store.create(new_job(), now=1.0)
    await store.begin_submit(job.id, 1.0)
    await store.complete(job.id, {"text": "x"}, now=2.0)
    assert [j.id for j in await store.undelivered(2.0, ["telegram"])] == [job.id]
    await store.defer_delivery(job.id, 50.0, 3.0)
    assert await store.undelivered(10.0, ["telegram"]) == []
    assert await store.next_wakeup(["telegram"]) == 50.0
    await store.mark_undeliverable(job.id, "bot was blocked", 4.0)
    assert await store.undelivered(100.0, ["telegram"]) == []
    got = await store.get(job.id)
    assert got is not None and got.delivered


async def test_store_settings_roundtrip(store: SqliteJobStore) -> None:
    assert await store.get_settings("telegram", "42") == {}
    await store.put_settings("telegram", "42", {"language": "de"}, 1.0)
    await store.put_settings("telegram", "42", {"language": "fr"}, 2.0)
    assert await store.get_settings("telegram", "42") == {"language": "fr"}
    assert await store.get_settings("discord", "42") == {}
