"""Job-store contract for a long recording's parts, on every backend (SQLite file, throwaway
PostgreSQL): split atomically, guarded part transitions under the job's lease, cost summed,
kept across a restart, deleted with the job."""

from __future__ import annotations

import pytest

from bot.jobs.poller import Reach
from bot.jobs.steps import Failure
from bot.model.job import Blob, JobKind, JobState, NewJob, NewPart
from bot.model.speech import Origin, Transcript
from bot.providers.base import Ticket
from bot.storage.jobs import SqlJobStore
from testkit.support import Opener

ORIGIN = Origin(platform="telegram", chat_id="42", user_id="7")
TG = ["telegram"]
LONG = NewJob(
    JobKind.STT,
    ORIGIN,
    "nanogpt",
    "Whisper-Large-V3",
    {"language": "auto", "part_seconds": 600.0},
    deadline_at=1e9,
    input_duration=1500.0,
)
PARTS = [
    NewPart(0.0, 590.5, Blob(b"part-1", "part-1.ogg", "audio/ogg")),
    NewPart(590.5, 600.0, Blob(b"part-2", "part-2.ogg", "audio/ogg")),
    NewPart(1190.5, 309.5, Blob(b"part-3", "part-3.ogg", "audio/ogg")),
]


async def split_job(store: SqlJobStore) -> str:
    job = await store.create(LONG, now=10.0, input_blob=Blob(b"whole", "a.ogg", "audio/ogg"))
    [claimed] = await store.claims.claim(11.0, Reach(TG), 5, lease=30.0)
    assert claimed.id == job.id and await store.steps.begin_submit(job.id, 11.0)
    assert await store.parts.store_parts(job.id, PARTS, next_poll_at=12.0, now=12.0)
    return job.id


async def test_store_parts_split_atomically_and_kept_across_restart(opener: Opener) -> None:
    store = await opener()
    job_id = await split_job(store)
    assert not await store.parts.store_parts(job_id, PARTS, next_poll_at=13.0, now=13.0)  # once
    await store.close()
    store = await opener()  # restart
    job = await store.get(job_id)
    assert job is not None and job.state is JobState.SUBMITTED and job.ticket == {"split": 3}
    assert await store.kept.load_blob(job_id, "input") is None  # the parts replace the whole input
    parts = await store.parts.of(job_id)
    assert [(p.index, p.start, p.duration, p.state) for p in parts] == [
        (0, 0.0, 590.5, JobState.QUEUED),
        (1, 590.5, 600.0, JobState.QUEUED),
        (2, 1190.5, 309.5, JobState.QUEUED),
    ]
    assert await store.parts.load_part_input(job_id, 1) == PARTS[1].blob


async def test_store_parts_transitions_are_guarded_and_cost_summed(opener: Opener) -> None:
    store = await opener()
    job_id = await split_job(store)
    assert await store.parts.begin_part(job_id, 0, 20.0)
    assert not await store.parts.begin_part(job_id, 0, 20.5)  # already on its way
    done = Transcript("one", cost=0.25, currency="USD")
    assert await store.parts.complete_part(job_id, 0, done, now=21.0)
    assert not await store.parts.fail_part(job_id, 0, "late", now=22.0)  # finished stays finished
    assert await store.parts.load_part_input(job_id, 0) is None  # paid for: audio dropped
    assert await store.parts.begin_part(job_id, 1, 23.0)
    ticket = Ticket("nanogpt", {"runId": "r2"}, cost=0.5)
    assert await store.parts.part_submitted(job_id, 1, ticket, now=24.0)
    assert await store.parts.load_part_input(job_id, 1) is None
    assert not await store.parts.requeue_part(
        job_id, 1, 25.0
    )  # its audio is gone: not free to rerun
    job = await store.get(job_id)
    assert job is not None and job.cost == pytest.approx(0.75) and job.currency == "USD"
    parts = await store.parts.of(job_id)
    assert parts[0].transcript is not None and parts[0].transcript.text == "one"
    assert parts[1].state is JobState.SUBMITTED and parts[1].ticket == {"runId": "r2"}
    usage = await store.usage.usage(0.0)
    assert usage[0]["cost"] == pytest.approx(0.75) and usage[0]["jobs"] == 1  # one recording


async def test_store_parts_change_only_under_the_jobs_lease(opener: Opener) -> None:
    store, other = await opener(), await opener()
    job_id = await split_job(store)
    [held] = await store.claims.claim(100.0, Reach(TG), 5, lease=30.0)  # this process steps the job
    assert held.id == job_id
    assert not await other.parts.begin_part(job_id, 0, 101.0)
    assert not await other.parts.fail_part(job_id, 0, "not mine", now=101.0)
    assert await store.parts.begin_part(job_id, 0, 101.0)
    assert await store.parts.requeue_part(job_id, 0, 102.0)  # provably not taken: back in line
    assert (await store.parts.of(job_id))[0].state is JobState.QUEUED


async def test_store_parts_deleted_with_their_job(opener: Opener) -> None:
    store = await opener()
    job_id = await split_job(store)
    await store.steps.fail(job_id, Failure("stopped"), 30.0)
    assert await store.forget("telegram", "42", "7") == 1
    assert await store.parts.of(job_id) == []


async def test_store_unique_key_one_live_job_and_a_failed_one_gives_it_up(opener: Opener) -> None:
    store, other = await opener(), await opener()
    new = NewJob(JobKind.TEXT, ORIGIN, "brain", "m", {"action": "summary"}, 1e9, unique_key="k1")
    first = await store.create(new, now=1.0)
    again = await other.create(new, now=2.0)  # another process, the same button pressed
    assert again.id == first.id
    assert (await other.find_unique("k1")) == first
    assert await store.steps.fail(first.id, Failure("refused"), 3.0)
    assert await store.find_unique("k1") is None
    retry = await other.create(new, now=4.0)
    assert retry.id != first.id and retry.state is JobState.QUEUED
    assert (await store.get(first.id)) is not None  # the failed one is kept, without the key
