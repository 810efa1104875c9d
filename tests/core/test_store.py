"""Job store contract, run against every backend (SQLite file, throwaway PostgreSQL): guarded
transitions, leases, cancellation, restart, queries. A backend is correct when this passes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from bot.config.load import AccessConfig, LimitsConfig
from bot.jobs.poller import Reach
from bot.jobs.steps import Completion, Failure, NextPoll, Submission
from bot.model.errors import BotError
from bot.model.job import Blob, JobKind, JobState, NewJob
from bot.model.speech import Origin
from bot.service.limits import Guard, LimitExceeded
from bot.storage.jobs import SqlJobStore
from bot.storage.sqlite import SqliteJobStore
from bot.storage.sqlite_schema import MIGRATIONS
from testkit.support import Opener, old_sqlite

ORIGIN = Origin(platform="telegram", chat_id="42", user_id="7", reply_to="99", extra={"k": 1})
TG = ["telegram"]


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


async def claimed(store: SqlJobStore, now: float, limit: int = 10) -> list[str]:
    return [j.id for j in await store.claims.claim(now, Reach(TG), limit, lease=30.0)]


async def test_store_create_roundtrip_keeps_origin_and_input(store: SqlJobStore) -> None:
    job = await store.create(
        new_job(), now=100.0, input_blob=Blob(b"OggS...", "a.ogg", "audio/ogg")
    )
    assert len(job.id) == 6 and job.id.isalnum()
    assert job.state is JobState.QUEUED and job.next_poll_at == 100.0
    assert job.origin == ORIGIN
    assert job.input_bytes == 7
    assert await store.kept.load_blob(job.id, "input") == Blob(b"OggS...", "a.ogg", "audio/ogg")


async def test_store_transitions_are_guarded(store: SqlJobStore) -> None:
    job = await store.create(new_job(), now=100.0, input_blob=Blob(b"x", None, None))
    assert await store.steps.begin_submit(job.id, 101.0)
    assert not await store.steps.begin_submit(job.id, 101.5)  # already submitting
    assert await store.steps.mark_submitted(
        job.id, Submission({"runId": "r1"}, next_poll_at=105.0), 102.0
    )
    assert not await store.steps.mark_submitted(
        job.id, Submission({"runId": "r2"}, next_poll_at=1.0), 102.0
    )
    assert await store.kept.load_blob(job.id, "input") is None  # provider has it: audio dropped
    loaded = await store.get(job.id)
    assert loaded is not None and loaded.ticket == {"runId": "r1"}
    assert await store.steps.complete(
        job.id, Completion({"text": "hi"}, cost=0.01, currency="USD"), 110.0
    )
    assert not await store.steps.fail(
        job.id, Failure("late failure"), 111.0
    )  # terminal stays terminal
    done = await store.get(job.id)
    assert done is not None and done.state is JobState.COMPLETED and done.cost == 0.01
    assert await store.replies.mark_delivered(job.id, "m1", 112.0)
    assert not await store.replies.mark_delivered(job.id, "m2", 113.0)  # exactly once
    final = await store.get(job.id)
    assert final is not None and final.delivery_message_id == "m1"


async def test_store_survives_reopen_mid_job(opener: Opener) -> None:
    store = await opener()
    job = await store.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    await store.steps.begin_submit(job.id, 2.0)
    await store.steps.mark_submitted(
        job.id, Submission({"runId": "abc", "cost": 0.2}, next_poll_at=9.0), 3.0
    )
    await store.close()
    reopened = await opener()
    assert await claimed(reopened, 8.0) == []
    due = await reopened.claims.claim(10.0, Reach(TG), 10, 30.0)
    assert [j.id for j in due] == [job.id] and due[0].ticket == {"runId": "abc", "cost": 0.2}
    assert due[0].lease_owner == reopened.owner and due[0].lease_until == 40.0


async def test_store_claim_orders_replies_first_then_due_time(store: SqlJobStore) -> None:
    jobs = [await store.create(new_job(), now=float(t)) for t in (3, 1, 2)]
    finished = await store.create(new_job(), now=5.0)
    await store.steps.fail(finished.id, Failure("no"), 6.0)
    got = await claimed(store, 10.0, limit=3)
    assert got == [finished.id, jobs[1].id, jobs[2].id]
    assert await claimed(store, 10.0) == [jobs[0].id]  # the rest are leased now
    assert await claimed(store, 10.0, limit=5) == []
    assert await claimed(store, 10.0, limit=0) == []


async def test_store_claim_is_exclusive_across_owners_until_the_lease_ends(
    opener: Opener,
) -> None:
    a, b = await opener(), await opener()
    assert a.owner != b.owner
    job = await a.create(new_job(), now=1.0)
    assert await claimed(a, 2.0) == [job.id]  # leased until 32
    assert await claimed(b, 20.0) == []
    assert await b.claims.next_wakeup(Reach(TG)) == 32.0  # claimable again when the lease ends
    assert not await b.steps.begin_submit(job.id, 20.0)  # another owner's step: refused
    assert await a.claims.renew([job.id], 60.0) == 1
    assert await b.claims.renew([job.id], 99.0) == 0  # only the holder renews
    assert await claimed(b, 40.0) == []
    assert await claimed(b, 61.0) == [job.id]  # a's lease expired: b carries the job on
    assert await a.claims.release([job.id]) == 0  # no longer a's
    assert await b.claims.release([job.id]) == 1
    assert await claimed(a, 61.0) == [job.id]


async def test_store_complete_hold_gives_a_fresh_full_lease(opener: Opener) -> None:
    a, b = await opener(), await opener()
    job = await a.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    assert await claimed(a, 2.0) == [job.id]  # leased until 32
    assert await a.steps.begin_submit(job.id, 3.0)
    # The step finishes at 30 (2 s of its claim's lease left) and keeps the job to reply:
    # the lease runs a full 30 s from now, so the reply cannot be claimed again mid-send.
    done = await a.steps.complete(job.id, Completion({"text": "hi"}, hold_until=60.0), 30.0)
    assert done is not None and done.state is JobState.COMPLETED
    assert (done.lease_owner, done.lease_until) == (a.owner, 60.0)
    assert await claimed(b, 40.0) == []
    assert await b.claims.next_wakeup(Reach(TG)) == 60.0
    assert await a.replies.mark_delivered(job.id, "m1", 41.0)
    assert await claimed(b, 61.0) == []  # delivered: nothing left to claim
    other = await a.create(new_job(), now=1.0)
    assert await claimed(a, 2.0) == [other.id]
    failed = await a.steps.fail(
        other.id, Failure("no"), 3.0
    )  # no hold: the lease ends with the step
    assert failed is not None and (failed.lease_owner, failed.lease_until) == (None, None)
    assert await claimed(b, 4.0) == [other.id]  # its reply is anyone's to send


async def test_store_concurrent_claims_never_overlap(opener: Opener) -> None:
    owners = [await opener() for _ in range(3)]
    ids = {(await owners[0].create(new_job(), now=float(i))).id for i in range(60)}
    rounds = await asyncio.gather(*(claimed(s, 100.0, limit=7) for _ in range(4) for s in owners))
    got = [job_id for r in rounds for job_id in r]
    assert len(got) == len(set(got))  # no job claimed twice
    assert set(got) <= ids and len(got) == min(len(ids), 7 * 12)


async def test_store_transition_ends_the_lease(store: SqlJobStore) -> None:
    job = await store.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    await claimed(store, 1.0)
    assert await store.steps.begin_submit(job.id, 1.0)
    still = await store.get(job.id)
    assert still is not None and still.lease_owner == store.owner  # the submit is running
    await store.steps.mark_submitted(job.id, Submission({"id": 1}, next_poll_at=5.0), 2.0)
    moved = await store.get(job.id)
    assert moved is not None and moved.lease_owner is None and moved.lease_until is None
    assert await claimed(store, 5.0) == [job.id]


async def test_store_recover_never_touches_a_live_lease(opener: Opener) -> None:
    dead, alive = await opener(), await opener()
    job = await dead.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    await claimed(dead, 1.0)  # leased until 31
    await dead.steps.begin_submit(job.id, 1.0)
    assert await alive.claims.recover_interrupted(20.0, "interrupted!", TG) == []
    assert await dead.claims.recover_interrupted(40.0, "interrupted!", TG) == []  # never its own
    assert await alive.claims.recover_interrupted(40.0, "interrupted!", TG) == [job.id]
    got = await alive.get(job.id)
    assert got is not None and got.state is JobState.FAILED and got.error == "interrupted!"
    assert got.error_code == "interrupted" and got.lease_owner is None
    assert not await dead.steps.mark_submitted(
        job.id, Submission({"late": 1}, next_poll_at=50.0), 41.0
    )


async def test_store_recover_interrupted_fails_only_submitting_of_own_platforms(
    store: SqlJobStore,
) -> None:
    a = await store.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    b = await store.create(new_job(), now=1.0)
    other = await store.create(
        new_job(origin=Origin("discord", "c", "u")), now=1.0, input_blob=Blob(b"x", None, None)
    )
    await store.steps.begin_submit(a.id, 2.0)
    await store.steps.begin_submit(other.id, 2.0)
    assert await store.claims.recover_interrupted(3.0, "interrupted!", TG) == [a.id]
    untouched = await store.get(b.id)
    assert untouched is not None and untouched.state is JobState.QUEUED
    still = await store.get(other.id)
    assert still is not None and still.state is JobState.SUBMITTING
    assert await store.kept.load_blob(a.id, "input") is None


async def test_store_input_audio_goes_with_every_way_out_of_the_queue(
    store: SqlJobStore,
) -> None:
    blob = Blob(b"audio", "a.ogg", "audio/ogg")
    failed = await store.create(new_job(), now=1.0, input_blob=blob)
    requeued = await store.create(new_job(), now=1.0, input_blob=blob)
    await store.steps.begin_submit(requeued.id, 2.0)
    await store.steps.requeue(requeued.id, 5.0, 2.5)
    assert await store.steps.fail(failed.id, Failure("too late"), 3.0)
    assert await store.kept.load_blob(failed.id, "input") is None
    assert await store.kept.load_blob(requeued.id, "input") == blob  # not sent yet: kept for retry
    cancelled = await store.create(new_job(), now=1.0, input_blob=blob)
    assert await store.cancel(cancelled.id, 4.0) is not None
    assert await store.kept.load_blob(cancelled.id, "input") is None


@pytest.mark.parametrize("state", ["queued", "submitting", "submitted"])
async def test_store_cancel_wins_over_the_step_in_flight(opener: Opener, state: str) -> None:
    store = await opener()
    job = await store.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    await claimed(store, 1.0)
    if state != "queued":
        await store.steps.begin_submit(job.id, 1.0)
    if state == "submitted":
        await store.steps.mark_submitted(job.id, Submission({"id": 1}, next_poll_at=5.0), 2.0)
        await claimed(store, 5.0)  # a poll is running
    cancelled = await store.cancel(job.id, 6.0)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert cancelled.completed_at == 6.0 and cancelled.error_code == "cancelled"
    # The step in flight finishes after the cancel: every write it tries is refused.
    assert not await store.steps.mark_submitted(
        job.id, Submission({"id": 2}, next_poll_at=9.0), 7.0
    )
    assert not await store.steps.complete(job.id, Completion({"text": "late"}), 7.0)
    assert not await store.steps.reschedule(job.id, NextPoll(next_poll_at=9.0), 7.0)
    assert not await store.steps.fail(job.id, Failure("late"), 7.0)
    assert not await store.steps.begin_submit(job.id, 7.0)
    assert not await store.steps.requeue(job.id, 9.0, 7.0)
    assert not await store.steps.requeue_lost(job.id, 7.0)
    # Nor is a cancelled job ever delivered: its answer was the cancel itself.
    assert not await store.replies.mark_delivered(job.id, "m", 7.0)
    assert not await store.replies.defer_delivery(job.id, 9.0, 7.0)
    assert not await store.replies.mark_undeliverable(job.id, "gone", 7.0)
    assert await store.cancel(job.id, 8.0) is None  # once
    await store.close()
    reopened = await opener()
    assert await claimed(reopened, 1000.0) == []  # never polled nor delivered again
    assert await reopened.claims.next_wakeup(Reach(TG)) is None
    assert await reopened.claims.recover_interrupted(1000.0, "x", TG) == []
    got = await reopened.get(job.id)
    assert got is not None and got.state is JobState.CANCELLED and got.state.terminal
    assert (got.next_poll_at, got.deliver_after, got.lease_owner) == (None, None, None)
    assert await reopened.kept.load_blob(job.id, "input") is None


async def test_store_claim_leaves_replies_of_offline_platforms_waiting(
    store: SqlJobStore,
) -> None:
    both = ["telegram", "discord"]
    reply = await store.create(new_job(), now=1.0)
    await store.steps.begin_submit(reply.id, 1.0)
    await store.steps.complete(reply.id, Completion({"text": "x"}), 2.0)
    assert await store.claims.next_wakeup(Reach(TG)) == 2.0
    assert await store.claims.next_wakeup(Reach(TG, [])) is None  # nothing to wake up for
    queued = await store.create(new_job(), now=3.0)
    other = await store.create(new_job(origin=Origin("discord", "1", "2")), now=3.0)
    await store.steps.begin_submit(other.id, 3.0)
    await store.steps.complete(other.id, Completion({"text": "y"}), 3.0)
    # Telegram is down: its reply waits (no attempt used), its submit and Discord's reply go.
    jobs = await store.claims.claim(10.0, Reach(both, ["discord"]), 10, 30.0)
    assert sorted(j.id for j in jobs) == sorted([queued.id, other.id])
    waiting = await store.get(reply.id)
    assert waiting is not None and waiting.lease_owner is None
    assert waiting.delivery_attempts == 0
    assert [j.id for j in await store.claims.claim(11.0, Reach(both, both), 10, 30.0)] == [reply.id]


async def test_store_job_counts_by_state_kind_and_provider(store: SqlJobStore) -> None:
    assert await store.usage.job_counts() == []
    await store.create(new_job(), now=1.0)
    cancelled = await store.create(new_job(), now=1.0)
    await store.cancel(cancelled.id, 2.0)
    for _ in range(2):
        await store.create(new_job(kind=JobKind.TTS, provider="cantonese"), now=1.0)
    assert sorted(await store.usage.job_counts()) == [
        ("cancelled", "stt", "nanogpt", 1),
        ("queued", "stt", "nanogpt", 1),
        ("queued", "tts", "cantonese", 2),
    ]


async def test_store_cancel_refuses_finished_jobs(store: SqlJobStore) -> None:
    job = await store.create(new_job(), now=1.0)
    await store.steps.fail(job.id, Failure("no"), 2.0)
    assert await store.cancel(job.id, 3.0) is None
    assert await store.cancel("nosuch", 3.0) is None


async def test_store_chat_queries_are_scoped(store: SqlJobStore) -> None:
    mine = await store.create(new_job(), now=1.0)
    theirs = await store.create(new_job(origin=Origin("telegram", "43", "8")), now=2.0)
    assert await store.find_for_chat("telegram", "42", mine.id) is not None
    assert await store.find_for_chat("telegram", "42", theirs.id) is None
    assert await store.find_for_chat("telegram", "42", mine.id.upper()) is not None
    assert [j.id for j in await store.recent_for_chat("telegram", "42")] == [mine.id]
    assert [j.id for j in await store.recent(10)] == [theirs.id, mine.id]


async def test_store_find_by_source_and_reusable(store: SqlJobStore) -> None:
    origin = Origin("telegram", "42", "7", extra={"source": "u:1"})
    job = await store.create(new_job(origin=origin, dedup_key="k"), now=1.0)
    assert await store.find_by_source("telegram", "42", "u:1") == job
    assert await store.find_by_source("telegram", "42", "u:2") is None
    assert await store.find_reusable("k") is None
    await store.steps.begin_submit(job.id, 2.0)
    await store.steps.complete(job.id, Completion({"text": "x"}), 3.0)
    reusable = await store.find_reusable("k")
    assert reusable is not None and reusable.id == job.id


async def test_store_undelivered_and_deferral(store: SqlJobStore) -> None:
    job = await store.create(new_job(), now=1.0)
    await store.steps.begin_submit(job.id, 1.0)
    await store.steps.complete(job.id, Completion({"text": "x"}), 2.0)
    assert await claimed(store, 2.0) == [job.id]
    await store.replies.defer_delivery(job.id, 50.0, 3.0)
    assert await claimed(store, 10.0) == []
    assert await store.claims.next_wakeup(Reach(TG)) == 50.0
    await store.replies.mark_undeliverable(job.id, "bot was blocked", 4.0)
    assert await claimed(store, 100.0) == []
    got = await store.get(job.id)
    assert got is not None and got.delivered and got.delivery_attempts == 1


async def test_store_output_clip_lands_with_completion(store: SqlJobStore) -> None:
    job = await store.create(new_job(kind=JobKind.TTS), now=1.0)
    await store.steps.begin_submit(job.id, 1.0)
    clip = Blob(b"\x00OggS\xff", "voice.ogg", "audio/ogg")
    assert await store.steps.complete(job.id, Completion({"duration": 1.5}, output_blob=clip), 2.0)
    assert await store.kept.load_blob(job.id, "output") == clip
    assert not await store.steps.complete(
        job.id, Completion({"duration": 9}, output_blob=clip), 3.0
    )


async def test_store_shift_clock_moves_unfinished_jobs(store: SqlJobStore) -> None:
    running = await store.create(new_job(), now=100.0)
    waiting = await store.create(new_job(), now=100.0)
    assert await store.claims.shift_clock(-50.0, TG, exclude=[running.id]) == 1
    moved = await store.get(waiting.id)
    assert moved is not None and moved.created_at == 50.0 and moved.next_poll_at == 50.0


async def test_store_forget_and_purge(store: SqlJobStore) -> None:
    old = await store.create(new_job(), now=1.0)
    await store.steps.fail(old.id, Failure("no"), 2.0)
    await claimed(store, 2.0)
    await store.replies.mark_delivered(old.id, "m", 3.0)
    undelivered = await store.create(new_job(), now=1.0)
    await store.steps.fail(undelivered.id, Failure("no"), 2.0)
    gone = await store.create(new_job(), now=1.0)
    await store.cancel(gone.id, 2.0)
    assert await store.purge(10.0) == 2  # answered or cancelled; never an unanswered one
    assert await store.get(undelivered.id) is not None
    submitting = await store.create(new_job(), now=1.0)
    await store.steps.begin_submit(submitting.id, 2.0)
    assert await store.forget("telegram", "42", "7") == 1  # the one mid-submit is kept
    assert await store.get(submitting.id) is not None


async def test_store_user_settings_are_per_person_and_apart_from_chats(store: SqlJobStore) -> None:
    assert await store.usage.get_user_settings("telegram", "7") == {}
    await store.usage.put_user_settings("telegram", "7", {"language": "de", "voice": "a"}, 1.0)
    await store.usage.put_user_settings("telegram", "7", {"language": "uk"}, 2.0)
    await store.usage.put_settings(
        "telegram", "7", {"language": "fr"}, 3.0
    )  # a chat with the same id
    assert await store.usage.get_user_settings("telegram", "7") == {"language": "uk"}
    assert await store.usage.get_user_settings("discord", "7") == {}
    assert await store.usage.get_settings("telegram", "7") == {"language": "fr"}


async def test_store_preferences_read_chat_and_person_together(store: SqlJobStore) -> None:
    assert await store.usage.get_preferences("telegram", "42", "7") == ({}, {})
    await store.usage.put_settings("telegram", "42", {"language": "fr"}, 1.0)
    assert await store.usage.get_preferences("telegram", "42", "7") == ({"language": "fr"}, {})
    await store.usage.put_user_settings("telegram", "7", {"voice": "nova"}, 2.0)
    await store.usage.put_settings("telegram", "7", {"language": "uk"}, 3.0)  # a chat with the id 7
    await store.usage.put_user_settings("discord", "7", {"voice": "echo"}, 4.0)
    assert await store.usage.get_preferences("telegram", "42", "7") == (
        {"language": "fr"},
        {"voice": "nova"},
    )
    assert await store.usage.get_preferences("telegram", "43", "7") == ({}, {"voice": "nova"})
    assert await store.usage.get_preferences("discord", "42", "7") == ({}, {"voice": "echo"})


async def test_store_settings_and_speeds_roundtrip(store: SqlJobStore) -> None:
    assert await store.usage.get_settings("telegram", "42") == {}
    await store.usage.put_settings("telegram", "42", {"language": "de"}, 1.0)
    await store.usage.put_settings("telegram", "42", {"language": "fr"}, 2.0)
    assert await store.usage.get_settings("telegram", "42") == {"language": "fr"}
    assert await store.usage.get_settings("discord", "42") == {}
    key = ("nanogpt", "m", "stt")
    await store.usage.save_speed_stats(key, {"sw": 1.0, "samples": 3.0, "dev": 0.2}, 1.0)
    await store.usage.save_speed_stats(key, {"sw": 2.0, "samples": 4.0, "dev": 0.2}, 2.0)
    stats = await store.usage.load_speed_stats()
    assert stats[key]["sw"] == 2.0 and stats[key]["samples"] == 4.0 and stats[key]["sx"] == 0.0


async def test_store_activity_and_usage_count_paid_jobs(store: SqlJobStore) -> None:
    await store.create(new_job(), now=100.0)
    tts = new_job(kind=JobKind.TTS, options={"chars": 12}, input_duration=None)
    await store.create(tts, now=101.0)
    reused = new_job(options={"reused_from": "abc"})
    await store.create(reused, now=102.0, state=JobState.COMPLETED, result={"text": "x"})
    act = await store.usage.activity("telegram", "7", "42", started_since=50.0, day=0.0)
    assert (act.started, act.user_active, act.chat_active) == (2, 2, 2)
    assert (act.user_seconds, act.user_chars, act.chat_chars) == (3.5, 12, 12)
    [row] = await store.usage.usage(0.0)
    assert (row["jobs"], row["chars"], row["audio_seconds"]) == (3, 12, 7.0)
    assert await store.usage.usage(86400.0) == []  # whole UTC days from the one containing since
    assert await store.usage.usage(0.0, platform="discord") == []


async def test_store_usage_rollup_equals_the_jobs_sums(store: SqlJobStore) -> None:
    """The daily rollup follows creation, cost updates, /forget and purge exactly."""
    day = 86400.0
    other = Origin("discord", "c9", "u9")
    a = await store.create(new_job(), now=day + 10)
    b = await store.create(new_job(origin=other), now=2 * day + 10)
    tts = new_job(kind=JobKind.TTS, options={"chars": 30}, input_duration=None)
    c = await store.create(tts, now=2 * day + 20)
    await store.steps.begin_submit(a.id, day + 11)
    await store.steps.mark_submitted(
        a.id, Submission({"r": 1}, next_poll_at=day + 20, cost=0.25), day + 12
    )
    await store.steps.complete(a.id, Completion({"text": "x"}, cost=0.5, currency="USD"), day + 30)
    rows = {r["user_id"]: r for r in await store.usage.usage(0.0)}
    assert rows["7"]["jobs"] == 2 and rows["7"]["cost"] == 0.5 and rows["7"]["chars"] == 30
    assert rows["7"]["currency"] == "USD" and rows["u9"]["audio_seconds"] == 3.5
    assert {r["user_id"] for r in await store.usage.usage(2 * day)} == {"7", "u9"}
    assert await store.forget("discord", "c9", "u9") == 1
    assert [r["user_id"] for r in await store.usage.usage(0.0)] == ["7"]
    await store.cancel(c.id, 2 * day + 30)
    assert await store.purge(3 * day) == 1  # the cancelled one; a is not answered yet
    [left] = await store.usage.usage(0.0)
    assert (left["jobs"], left["chars"], left["cost"]) == (1, 0, 0.5)
    assert await store.get(b.id) is None


async def test_store_sqlite_file_is_private(tmp_path: Path) -> None:
    store = await SqliteJobStore.open(tmp_path / "db" / "jobs.sqlite3")
    try:
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    finally:
        await store.close()


async def test_store_sqlite_database_from_schema_v6_opens_and_migrates(tmp_path: Path) -> None:
    """A database written by the previous release (schema v6) keeps its jobs and carries on."""
    path = tmp_path / "old.sqlite3"
    old_sqlite(path, 6)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, platform, chat_id, user_id, provider, model, state, "
            "ticket, deadline_at, created_at, updated_at, next_poll_at, options) "
            "VALUES ('abc234', 'stt', 'telegram', '42', '7', 'nanogpt', 'm', 'submitted', "
            '\'{"runId": "r"}\', 5000, 1, 2, 3, \'{"language": "de"}\')'
        )
        conn.execute(
            "INSERT INTO jobs (id, kind, platform, chat_id, user_id, provider, model, state, "
            "deadline_at, created_at, updated_at) VALUES ('def567', 'stt', 'telegram', '42', "
            "'7', 'nanogpt', 'm', 'submitting', 5000, 1, 2)"
        )
    store = await SqliteJobStore.open(path)
    try:
        job = await store.get("abc234")
        assert job is not None and job.ticket == {"runId": "r"} and job.lease_owner is None
        assert await claimed(store, 10.0) == ["abc234"]
        # Left mid-submit by the old version: settled as before (interrupted, never resent).
        assert await store.claims.recover_interrupted(10.0, "interrupted", TG) == ["def567"]
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_store_sqlite_refuses_a_second_runner_naming_file_and_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.sqlite3"
    first, second = await SqliteJobStore.open(path), await SqliteJobStore.open(path)
    try:
        job = await first.create(new_job(), now=1.0)
        await claimed(first, 1.0)  # a step claimed by a process that then dies
        await first.claims.lock_runner(TG)
        with pytest.raises(BotError) as refused:
            await second.claims.lock_runner(TG)
        assert str(path) in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
        await first.close()  # the runner stops: the file is free, its leases are taken over
        await second.claims.lock_runner(TG)
        assert await claimed(second, 2.0) == [job.id]
    finally:
        await second.close()


async def test_store_begin_submit_replayed_by_its_own_step_counts_once(store: SqlJobStore) -> None:
    """A backend re-runs a statement whose answer was lost: the step's own SUBMITTING is a yes."""
    job = await store.create(new_job(), now=1.0, input_blob=Blob(b"x", None, None))
    await claimed(store, 1.0)
    assert await store.steps.begin_submit(job.id, 2.0)
    assert await store.steps.begin_submit(job.id, 2.0)
    got = await store.get(job.id)
    assert got is not None and got.attempts == 1 and got.state is JobState.SUBMITTING


@pytest.mark.parametrize(
    ("limits", "allowed"),
    [
        (LimitsConfig(jobs_per_minute=5, concurrent_per_user=0, concurrent_per_chat=0), 5),
        (LimitsConfig(jobs_per_minute=0, concurrent_per_user=3, concurrent_per_chat=0), 3),
        (
            LimitsConfig(
                jobs_per_minute=0,
                concurrent_per_user=0,
                concurrent_per_chat=0,
                daily_audio_minutes_per_user=0.5,  # 30 s: eight notes of 3.5 s fit
            ),
            8,
        ),
    ],
)
async def test_store_caps_hold_for_a_burst_across_processes(
    opener: Opener, limits: LimitsConfig, allowed: int
) -> None:
    """50 voice notes at once from one user, spread over three stores ("processes") on one
    database: exactly the allowed number become jobs, every other one is refused clearly."""
    stores = [await opener() for _ in range(3)]
    guard = Guard(stores[0].usage, limits, AccessConfig(), clock=lambda: 1000.0)

    async def one(i: int) -> str:
        admit = guard.admission(ORIGIN, seconds=3.5)
        try:
            await stores[i % 3].create(new_job(), now=1000.0, admit=admit)
        except LimitExceeded as exc:
            return str(exc)
        return "created"

    outcomes = await asyncio.gather(*(one(i) for i in range(50)))
    assert outcomes.count("created") == allowed
    refusals = {o for o in outcomes if o != "created"}
    assert len(refusals) >= 1 and all("limit" in o for o in refusals)
    assert len(await stores[0].recent(100)) == allowed


async def test_store_refused_create_leaves_a_dead_holders_key(opener: Opener) -> None:
    """A failed job's unique key goes to the next job only when that job is created: one the
    limits refuse leaves it with the failed job, whose finished parts can still be found."""
    store = await opener()
    dead = await store.create(new_job(unique_key="k"), now=1000.0, state=JobState.FAILED)
    # The failed job counts as started: one more this minute, then refusals.
    limits = LimitsConfig(jobs_per_minute=2, concurrent_per_user=0, concurrent_per_chat=0)
    guard = Guard(store.usage, limits, AccessConfig(), clock=lambda: 1000.0)
    seen = await guard.check_start(ORIGIN)  # as the service does: one read, then the create
    await store.create(new_job(), now=1000.0, admit=guard.admission(ORIGIN, seen=seen))
    with pytest.raises(LimitExceeded):
        await store.create(new_job(unique_key="k"), now=1000.0, admit=guard.admission(ORIGIN))
    released = await store.find_released("k")
    assert released is not None and released.id == dead.id
    assert len(await store.recent(10)) == 2
