"""Live partial transcripts in the core: a provider's text of finished segments reaches the
platform's progress with the job (never stored), growing, only while the chat wants it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.jobs.live import EditBudget, EditThrottle, live, partial_text, tail, with_partial
from bot.model.job import Blob, Job, JobKind, JobState, NewJob
from bot.model.speech import AudioInput, Origin, SttOptions, Transcript
from bot.providers.base import PollResult, PollStatus, SttCapabilities, Ticket
from bot.storage.jobs import SqlJobStore
from testkit.core import core_with_fakes
from testkit.support import FakeClock, RecordingDeliverer, a_job, job_worker

ORIGIN = Origin(platform="test", chat_id="chat-1", user_id="user-1")
SEGMENTS = ("One finished segment.", "Then another one.", "And the last.")


class GrowingSpeechToText:
    """An asynchronous engine whose polls report one more finished segment each time."""

    name = "grow"

    def __init__(self) -> None:
        self.polls = 0

    def capabilities(self, model: str) -> SttCapabilities:
        return SttCapabilities(
            asynchronous=True,
            diarization=False,
            timestamps=False,
            formats=frozenset({"ogg"}),
            max_upload_bytes=10**6,
        )

    async def submit(self, audio: AudioInput, options: SttOptions) -> Ticket:
        return Ticket(provider=self.name, data={"run": "r1"})

    async def poll(self, ticket: Ticket) -> PollResult:
        self.polls += 1
        if self.polls <= len(SEGMENTS):
            partial = " ".join(SEGMENTS[: self.polls])
            return PollResult(PollStatus.RUNNING, progress=self.polls / 4, partial=partial)
        return PollResult(PollStatus.COMPLETED, transcript=Transcript(" ".join(SEGMENTS)))


async def _run(store: SqlJobStore, live: bool | None) -> RecordingDeliverer:
    clock, out = FakeClock(), RecordingDeliverer()
    worker = job_worker(store, clock=clock, stt={"grow": GrowingSpeechToText()}, tts={})
    worker.register("test", out)
    options = {"language": "auto"} if live is None else {"live_transcripts": live}
    new = NewJob(JobKind.STT, ORIGIN, "grow", "m", options, deadline_at=clock.now + 600)
    job: Job | None = await store.create(
        new, now=clock(), input_blob=Blob(b"OggS", "a.ogg", "audio/ogg")
    )
    while job is not None and not job.delivered:
        await worker.advance(job, clock.advance(1.0))
        job = await store.get(job.id)
    return out


async def test_live_partial_text_grows_to_the_final_transcript(store: SqlJobStore) -> None:
    out = await _run(store, live=None)
    shown = [partial_text(j) for j in out.progressed if partial_text(j)]
    assert shown == [" ".join(SEGMENTS[:n]) for n in range(1, len(SEGMENTS) + 1)]
    [(done, _)] = out.delivered  # the final reply once, as before
    assert done.state is JobState.COMPLETED and done.transcript is not None
    assert all(done.transcript.text.startswith(text or "") for text in shown)
    stored = await store.get(done.id)
    assert stored is not None and "live_text" not in stored.extra  # shown, never stored


async def test_live_transcripts_off_shows_progress_only(store: SqlJobStore) -> None:
    out = await _run(store, live=False)
    assert out.progressed and not any(partial_text(j) for j in out.progressed)
    assert len(out.delivered) == 1


def test_live_with_partial_leaves_finished_jobs_alone() -> None:
    job = a_job(ORIGIN, JobState.COMPLETED)
    assert with_partial(job, "text") is job


def test_live_tail_keeps_the_newest_words_within_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(1000))
    shown = tail(text, 100)
    assert len(shown) <= 100 and shown.startswith("…word") and text.endswith(shown[1:])
    assert tail("short", 100) == "short"


@pytest.mark.parametrize("jobs", [1, 20])
def test_live_throttle_keeps_the_budget_per_chat_and_per_message(jobs: int) -> None:
    clock = FakeClock(0.0)
    throttle = EditThrottle(clock)
    budget = EditBudget(per_chat=4, window=5.0, per_message=2.5)
    sent: list[tuple[float, int]] = []
    for tick in range(600):  # a minute in tenths of a second, every job with newer text
        clock.now = tick / 10
        for job in range(jobs):
            if throttle.allow("c", f"m{job}", f"{job}:{tick}", budget, live=True):
                sent.append((clock.now, job))
    for at, _ in sent:
        assert sum(1 for t, _ in sent if at - 5.0 < t <= at) <= 4
    for job in range(jobs):
        times = [t for t, j in sent if j == job]
        assert all(b - a >= 2.5 for a, b in itertools.pairwise(times))
    # The budget is used, not starved: 4 per 5 s in the chat, one per 2.5 s per message.
    assert len(sent) >= min(4 * 60 // 5, 24 * jobs) - 1


def test_live_throttle_never_sends_the_same_text_twice() -> None:
    clock = FakeClock(0.0)
    throttle, budget = EditThrottle(clock), EditBudget(per_chat=4, window=5.0, per_message=2.5)
    assert throttle.allow("c", "m", "state", budget, live=False)
    clock.advance(10.0)
    assert not throttle.allow("c", "m", "state", budget, live=False)
    assert throttle.allow("c", "m", "state 2", budget, live=False)  # a state edit: no pause
    throttle.forget("m")
    assert throttle.allow("c", "m", "state 2", budget, live=False)


async def test_live_chat_setting_reaches_the_job_over_the_config(tmp_path: Path) -> None:
    async with core_with_fakes(tmp_path) as h:
        on = await h.stt()
        await h.core.service.change_setting("test", ORIGIN.chat_id, "live", "off")
        off = await h.stt()
    assert live(on) and on.options["live_transcripts"] is True
    assert not live(off)


def test_live_throttle_forgets_quiet_chats_and_messages() -> None:
    clock = FakeClock(0.0)
    throttle, budget = EditThrottle(clock), EditBudget(per_chat=4, window=5.0, per_message=2.5)
    assert throttle.allow("c", "m", "a", budget, live=True)
    clock.advance(3600.0)
    assert throttle.allow("other", "n", "b", budget, live=True)  # sweeps what went quiet
    assert throttle.allow("c", "m", "a", budget, live=True)  # "a" again: nothing was kept
