"""Cancel and retry notes through the service, worker and poller (the store's side of cancel is in
the contract suite, tests/core/test_store.py, on every backend)."""

from __future__ import annotations

from pathlib import Path

from bot.model.job import JobState
from bot.text import ENGLISH
from testkit.core import core_with_fakes
from testkit.fakes.providers import FakeNanoGpt


async def test_worker_job_cancelled_while_submitted_is_never_polled_or_delivered(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    nano.polls_to_complete = 3
    async with core_with_fakes(tmp_path, nano_url=nano.url, stt={"model": "Elevenlabs-STT"}) as b:
        job = await b.stt()
        await b.core.poller.run_once()
        assert [r.route for r in nano.requests] == ["transcribe"]
        done = await b.core.service.cancel(job.origin, job.id, admin=False)
        assert done.sent and done.job.state is JobState.CANCELLED
        await b.drive(steps=20)
        assert [r.route for r in nano.requests] == ["transcribe"]  # no poll after the cancel
        assert b.out.delivered == []
        final = await b.core.store.get(job.id)
        assert final is not None and final.state is JobState.CANCELLED and final.result is None


async def test_worker_unreachable_provider_tells_chat_it_is_retried(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    async with core_with_fakes(tmp_path, nano_url="http://127.0.0.1:9/api") as b:
        job = await b.stt()
        await b.core.poller.run_once()
        [note] = b.out.progressed
        assert note.id == job.id and note.state is JobState.QUEUED
        assert ENGLISH.render(note.error or "") == (
            "The speech service can't be reached right now. It will be retried automatically."
        )
        stored = await b.core.store.get(job.id)
        assert stored is not None and stored.error is None  # a note, not a stored failure


async def test_worker_deadline_message_states_seconds(tmp_path: Path, nano: FakeNanoGpt) -> None:
    config = {"deadline_seconds": 15, "max_poll_interval": 2}
    async with core_with_fakes(
        tmp_path, nano_url=nano.url, stt={"model": "Elevenlabs-STT"}, jobs=config
    ) as b:
        nano.polls_to_complete = 10**9
        await b.stt()
        await b.drive(steps=100)
        done = await b.only_result()
        assert ENGLISH.render(done.error or "") == (
            "The speech service did not finish within 15 seconds, so the job was stopped."
        )


async def test_worker_unreachable_until_deadline_says_so_not_a_wrong_duration(
    tmp_path: Path,
) -> None:
    config = {"deadline_seconds": 15, "max_poll_interval": 4}
    async with core_with_fakes(tmp_path, nano_url="http://127.0.0.1:9/api", jobs=config) as b:
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
    async with core_with_fakes(tmp_path, nano_url=nano.url, stt={"model": "Elevenlabs-STT"}) as b:
        job = await b.stt()
        await b.core.poller.run_once()
        submitted = await b.core.store.get(job.id)
        assert submitted is not None and submitted.state is JobState.SUBMITTED
    # Same database, but the provider's host no longer answers (restart with a dead URL).
    async with core_with_fakes(
        tmp_path, nano_url="http://127.0.0.1:9/api", stt={"model": "Elevenlabs-STT"}
    ) as b:
        b.clock.now = submitted.next_poll_at or b.clock.now
        await b.drive(steps=3)
        notes = [j for j in b.out.progressed if j.error]
        assert notes and notes[0].state is JobState.SUBMITTED
        assert "can't be reached" in (notes[0].error or "")
        assert notes[0].extra["retry"]["sent"] is True
