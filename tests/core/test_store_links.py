"""A link's job in the store, on every backend: its download recorded step by step under the
guard, and one transaction that queues it again with its audio (or nothing, when it was
cancelled or another process holds it)."""

from __future__ import annotations

from bot.jobs.links import Fetched
from bot.jobs.poller import Reach
from bot.model.job import Blob, JobKind, JobState, NewJob
from bot.model.speech import Origin
from bot.storage.jobs import SqlJobStore
from testkit.support import Opener

ORIGIN = Origin(platform="telegram", chat_id="42", user_id="7")
LINK = {"url": "http://media.test/talk.ogg", "kind": "direct", "title": "Talk", "duration": None}
AUDIO = Blob(b"OggS" + b"\0" * 60, "talk.ogg", "audio/ogg")


def link_job(duration: float | None = None) -> NewJob:
    return NewJob(
        kind=JobKind.STT,
        origin=ORIGIN,
        provider="nanogpt",
        model="Elevenlabs-STT",
        options={"language": "auto", "diarize": False, "link": LINK},
        deadline_at=5000.0,
        input_duration=duration,
    )


def fetched(job_options: dict[str, object], seconds: float = 90.0) -> Fetched:
    link = {**LINK, "downloaded": True}
    return Fetched(AUDIO, seconds, {**job_options, "link": link}, deadline_at=9000.0)


async def started(store: SqlJobStore, duration: float | None = None) -> str:
    job = await store.create(link_job(duration), now=100.0)
    [claimed] = await store.claims.claim(101.0, Reach(["telegram"]), 1, lease=30.0)
    assert claimed.id == job.id
    begun = await store.steps.begin_submit(job.id, 101.0)
    assert begun is not None and begun.input is None  # stored without audio
    return job.id


async def test_store_link_download_progress_then_queued_with_its_audio(
    store: SqlJobStore,
) -> None:
    job_id = await started(store)
    moving = await store.steps.download_progress(job_id, 2048, 0.25, 102.0)
    assert moving is not None and moving.state is JobState.SUBMITTING
    assert (moving.input_bytes, moving.progress) == (2048, 0.25)
    job = await store.get(job_id)
    assert job is not None
    done = await store.steps.downloaded(job_id, fetched(dict(job.options)), 103.0)
    assert done is not None and done.state is JobState.QUEUED
    assert done.options["link"]["downloaded"] is True
    assert (done.input_duration, done.input_bytes, done.progress) == (90.0, len(AUDIO.data), None)
    assert done.deadline_at == 9000.0 and done.lease_owner is None and done.next_poll_at == 103.0
    # The usual submit finds the audio as if it had been uploaded.
    again = await store.steps.begin_submit(job_id, 104.0)
    assert again is not None and again.input == AUDIO


async def test_store_link_cancel_stops_the_download_and_keeps_nothing(store: SqlJobStore) -> None:
    job_id = await started(store)
    assert await store.cancel(job_id, 102.0) is not None
    assert await store.steps.download_progress(job_id, 4096, None, 103.0) is None
    job = await store.get(job_id)
    assert job is not None
    assert await store.steps.downloaded(job_id, fetched(dict(job.options)), 104.0) is None
    assert (await store.get(job_id)).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert await store.kept.load_blob(job_id, "input") is None


async def test_store_link_download_of_another_process_is_refused(
    store: SqlJobStore, opener: Opener
) -> None:
    job_id = await started(store)
    other = await opener()
    assert await other.steps.download_progress(job_id, 1, None, 102.0) is None
    job = await store.get(job_id)
    assert job is not None
    assert await other.steps.downloaded(job_id, fetched(dict(job.options)), 103.0) is None
    assert (await store.get(job_id)).state is JobState.SUBMITTING  # type: ignore[union-attr]


async def test_store_link_daily_rollup_follows_the_real_length(store: SqlJobStore) -> None:
    stated = await started(store, duration=60.0)  # a length the link stated, counted at once
    [row] = await store.usage.usage(0.0)
    assert row["audio_seconds"] == 60.0
    job = await store.get(stated)
    assert job is not None
    await store.steps.downloaded(stated, fetched(dict(job.options), seconds=75.5), 103.0)
    [row] = await store.usage.usage(0.0)
    assert row["audio_seconds"] == 75.5
    activity = await store.usage.activity("telegram", "7", "42", started_since=0.0, day=0.0)
    assert activity.user_seconds == 75.5
