"""The job counts /metrics reads (``job_counts``, kept by triggers) against a real GROUP BY of the
jobs table, on every backend: through each transition, delete and prune, concurrent steps of
two stores, and a migration from the schema before it (backfilled)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path

import asyncpg

from bot.jobs.poller import Reach
from bot.jobs.steps import Completion, Failure, NextPoll, Submission
from bot.model.job import Blob, JobKind, NewJob, NewPart
from bot.model.speech import Origin
from bot.storage import open_store
from bot.storage.jobs import SqlJobStore
from testkit.support import Opener, old_postgres, old_sqlite

ORIGIN = Origin(platform="telegram", chat_id="42", user_id="7")
OTHER = Origin(platform="telegram", chat_id="43", user_id="8")
TG = ["telegram"]
AUDIO = Blob(b"OggS", "a.ogg", "audio/ogg")
GROUP_BY = "SELECT state, kind, provider, COUNT(*) FROM jobs GROUP BY state, kind, provider"


def new_job(
    origin: Origin = ORIGIN, kind: JobKind = JobKind.STT, provider: str = "nanogpt"
) -> NewJob:
    return NewJob(kind, origin, provider, "m", {"chars": 5}, deadline_at=1e9, input_duration=2.0)


async def assert_exact(store: SqlJobStore) -> list[tuple[str, str, str, int]]:
    """The store's counts equal the GROUP BY of the same database, row for row."""
    real = sorted(
        (str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in await store.db.fetch(GROUP_BY)
    )
    counts = sorted(await store.usage.job_counts())
    assert counts == real
    return counts


async def test_store_job_counts_exact_through_every_transition(store: SqlJobStore) -> None:
    assert await assert_exact(store) == []
    a = await store.create(new_job(), now=1.0, input_blob=AUDIO)
    b = await store.create(new_job(kind=JobKind.TTS, provider="cantonese"), now=1.0)
    c = await store.create(new_job(OTHER), now=1.0, input_blob=AUDIO)
    d = await store.create(new_job(), now=1.0)
    e = await store.create(new_job(provider="local"), now=1.0, input_blob=AUDIO)
    await assert_exact(store)
    assert len(await store.claims.claim(2.0, Reach(TG), 10, lease=30.0)) == 5
    await assert_exact(store)  # a claim takes a lease, it moves no job
    assert await store.steps.begin_submit(a.id, 2.0)
    assert await store.steps.begin_submit(b.id, 2.0)
    assert await store.steps.begin_submit(d.id, 2.0)
    assert await store.steps.begin_submit(e.id, 2.0)
    await assert_exact(store)
    assert await store.steps.mark_submitted(a.id, Submission({"run": "a"}, next_poll_at=5.0), 3.0)
    assert await store.steps.mark_submitted(
        e.id, Submission({"run": "e"}, next_poll_at=5.0, keep_input=True), 3.0
    )
    assert await store.steps.reschedule(a.id, NextPoll(next_poll_at=6.0, progress=0.5), 4.0)
    await assert_exact(store)  # a poll that finds it running changes no count
    assert await store.steps.requeue_lost(e.id, 4.0)
    assert await store.steps.complete(
        a.id, Completion({"text": "hi"}, cost=0.01, currency="USD"), 7.0
    )
    assert await store.steps.fail(b.id, Failure("no"), 7.0)
    assert await store.cancel(c.id, 7.0)
    await assert_exact(store)
    assert await store.replies.mark_delivered(a.id, "m1", 8.0)
    assert await store.replies.mark_undeliverable(b.id, "blocked", 8.0)
    assert await store.steps.requeue(d.id, 9.0, 8.0)
    assert await assert_exact(store) == [
        ("cancelled", "stt", "nanogpt", 1),
        ("completed", "stt", "nanogpt", 1),
        ("failed", "tts", "cantonese", 1),
        ("queued", "stt", "local", 1),
        ("queued", "stt", "nanogpt", 1),
    ]
    assert await store.purge(100.0) == 3  # delivered, undeliverable, cancelled
    await assert_exact(store)
    assert await store.forget("telegram", "42", "7") == 2
    assert await assert_exact(store) == []  # a combination at 0 is not reported


async def test_store_job_counts_exact_when_one_statement_adds_or_removes_many(
    store: SqlJobStore,
) -> None:
    jobs = [await store.create(new_job(), now=1.0) for _ in range(4)]
    jobs += [await store.create(new_job(OTHER, JobKind.TTS), now=1.0) for _ in range(3)]
    # A bulk load (as a restore or another tool might do): many jobs in one INSERT.
    copied = await store.db.execute(
        "INSERT INTO jobs (id, kind, platform, chat_id, user_id, provider, model, state, "
        "deadline_at, created_at, updated_at) SELECT 'c' || id, kind, platform, chat_id, "
        "user_id, provider, model, state, deadline_at, created_at, updated_at FROM jobs"
    )
    assert copied == 7
    assert await assert_exact(store) == [
        ("queued", "stt", "nanogpt", 8),
        ("queued", "tts", "nanogpt", 6),
    ]
    for job in jobs:
        assert await store.cancel(job.id, 2.0)
    assert await store.purge(10.0) == 7  # one DELETE of 4 + 3 jobs of two combinations
    await assert_exact(store)
    assert await store.forget("telegram", "42", "7") == 4  # the copies, in one DELETE
    assert await assert_exact(store) == [("queued", "tts", "nanogpt", 3)]


async def test_store_job_counts_exact_after_split_and_interrupted_recovery(opener: Opener) -> None:
    dead, store = await opener(), await opener()
    long = await dead.create(new_job(), now=1.0, input_blob=AUDIO)
    stranded = [await dead.create(new_job(provider=p), now=1.0, input_blob=AUDIO) for p in "xy"]
    await dead.claims.claim(1.0, Reach(TG), 10, lease=5.0)
    for job in (long, *stranded):
        assert await dead.steps.begin_submit(job.id, 1.0)
    parts = [NewPart(0.0, 1.0, AUDIO), NewPart(1.0, 1.0, AUDIO)]
    assert await dead.parts.store_parts(long.id, parts, next_poll_at=2.0, now=2.0)
    await assert_exact(store)
    # The dead process's lease expired: one job reruns for free, the other is failed.
    failed = await store.claims.recover_interrupted(
        10.0, "interrupted", TG, rerun=lambda j: j.provider == "x"
    )
    assert failed == [stranded[1].id]
    assert await assert_exact(store) == [
        ("failed", "stt", "y", 1),
        ("queued", "stt", "x", 1),
        ("submitted", "stt", "nanogpt", 1),
    ]


async def test_store_job_counts_exact_under_concurrent_steps_of_two_stores(opener: Opener) -> None:
    first, second = await opener(), await opener()
    jobs = await asyncio.gather(
        *(
            s.create(new_job(provider=f"p{i % 3}"), now=1.0)
            for i, s in enumerate([first, second] * 20)
        )
    )
    await assert_exact(first)

    async def step(store: SqlJobStore, job_id: str, i: int) -> None:
        assert await store.steps.begin_submit(job_id, 2.0)
        if i % 3 == 0:
            await store.steps.complete(job_id, Completion({"text": "ok"}), 3.0)
        elif i % 3 == 1:
            await store.steps.fail(job_id, Failure("no"), 3.0)
        else:
            await store.steps.mark_submitted(
                job_id, Submission({"run": job_id}, next_poll_at=9.0), 3.0
            )

    await asyncio.gather(*(step((first, second)[i % 2], j.id, i) for i, j in enumerate(jobs)))
    counts = await assert_exact(second)
    assert sum(n for *_, n in counts) == 40
    await asyncio.gather(
        *(s.cancel(j.id, 4.0) for s, j in zip([second, first] * 20, jobs, strict=True))
    )
    counts = await assert_exact(first)
    assert {state for state, *_ in counts} == {"completed", "failed", "cancelled"}


def _old_rows() -> list[tuple[object, ...]]:
    """Jobs as an older release stored them: several states, kinds and providers."""
    states = ["queued", "submitted", "completed", "completed", "failed", "cancelled"]
    return [
        (f"j{i:05d}", ("stt", "tts")[i % 2], "telegram", "42", "7", f"p{i % 5}", "m",
         states[i % len(states)], 1e9, float(i), float(i))
        for i in range(60)
    ]  # fmt: skip


def _old_counts() -> list[tuple[str, str, str, int]]:
    """What the migration must find in :func:`_old_rows`, counted here in Python."""
    counted = Counter((str(r[7]), str(r[1]), str(r[5])) for r in _old_rows())
    return sorted((*key, n) for key, n in counted.items())


_INSERT_OLD = (
    "INSERT INTO jobs (id, kind, platform, chat_id, user_id, provider, model, state, deadline_at, "
    "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)


async def assert_backfilled(store: SqlJobStore) -> None:
    """The migrated store counts the old rows, and keeps counting from there."""
    try:
        assert await assert_exact(store) == _old_counts()
        job = await store.create(new_job(provider="p0"), now=1.0)
        assert await store.cancel(job.id, 2.0)
        await assert_exact(store)
    finally:
        await store.close()


async def test_store_job_counts_backfilled_by_the_sqlite_migration(tmp_path: Path) -> None:
    path = tmp_path / "v12.sqlite3"
    old_sqlite(path, 12)
    with sqlite3.connect(path) as conn:
        conn.executemany(_INSERT_OLD, _old_rows())
    await assert_backfilled(await open_store(str(path)))


async def test_store_job_counts_backfilled_by_the_postgres_migration(pg_url: str) -> None:
    await old_postgres(pg_url, 6)
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.executemany(_INSERT_OLD.replace("?", "$%d") % tuple(range(1, 12)), _old_rows())
    finally:
        await conn.close()
    await assert_backfilled(await open_store(pg_url, pool_size=2))
