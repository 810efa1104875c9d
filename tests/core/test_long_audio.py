"""Long recordings end to end in-process: a 20-minute synthesized recording is split at its
pauses, its parts sent side by side (bounded) and stitched back on the recording's clock; limits
count the whole recording before anything is paid."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.chat import render, replies
from bot.config.load import Config
from bot.jobs.live import partial_text
from bot.model.errors import AudioTooLong
from bot.model.job import JobState
from bot.model.speech import Origin
from bot.service.limits import LimitExceeded
from testkit.core import CoreWithFakes
from testkit.fakes.openai import FakeOpenAi
from testkit.support import config_dict, whisper_route
from testkit.synth import Recording, speechlike

pytestmark = pytest.mark.timeout(240)

ORIGIN = Origin(platform="test", chat_id="chat-1", user_id="user-1", reply_to="m-1")
MAX_UPLOAD = 1_000_000  # parts of about 4 minutes at the parts' 32 kbit/s
TOLERANCE = 0.06  # seconds: the fake hears at 10 ms, Opus shifts edges by a few ms


@pytest.fixture(scope="module")
def twenty_minutes() -> Recording:
    return speechlike(20 * 60)


@pytest.fixture
async def whisper() -> AsyncIterator[FakeOpenAi]:
    async with FakeOpenAi() as fake:
        fake.listen = True
        yield fake


def long_config(tmp_path: Path, fake: FakeOpenAi, **limits: Any) -> Config:
    from bot.config.load import parse_config

    route = whisper_route(fake, MAX_UPLOAD)
    data = config_dict(tmp_path, limits=limits, **route)
    return parse_config(data, env={})


def long_harness(tmp_path: Path, fake: FakeOpenAi, **limits: Any) -> CoreWithFakes:
    """A core on :func:`long_config`, driven in half seconds (parts run side by side)."""
    return CoreWithFakes(long_config(tmp_path, fake, **limits), steps=200, dt=0.5)


async def test_long_audio_twenty_minutes_split_at_pauses_and_stitched_on_time(
    tmp_path: Path, whisper: FakeOpenAi, twenty_minutes: Recording
) -> None:
    whisper.delay = 0.05
    h = long_harness(tmp_path, whisper)
    core = await h.open()
    try:
        job = await core.service.transcribe(ORIGIN, twenty_minutes.data, "meeting.ogg")
        assert job.state is JobState.QUEUED and job.input_duration == pytest.approx(1200, abs=0.1)
        await h.drive()
        [(done, _)] = h.out.delivered
        parts = await core.store.parts.of(job.id)
    finally:
        await h.close()
    assert done.state is JobState.COMPLETED, done.error
    # Split into parts the model takes, each sent once, at most two at a time.
    uploads = [r.files["file"].data for r in whisper.requests_to("transcriptions")]
    assert len(parts) == len(uploads) == whisper.submits["transcriptions"] >= 5
    assert all(len(u) <= MAX_UPLOAD for u in uploads)
    assert whisper.max_in_flight == 2
    assert [p.state for p in parts] == [JobState.COMPLETED] * len(parts)
    # Every word heard once, at its time in the whole recording: no word was cut in two or lost
    # at a part boundary, and the timings run on across parts.
    t = done.transcript
    assert t is not None
    heard = [(s.start, s.end) for s in t.segments]
    assert len(heard) == len(twenty_minutes.words)
    for (start, end), (w_start, w_end) in zip(heard, twenty_minutes.words, strict=True):
        assert start == pytest.approx(w_start, abs=TOLERANCE)
        assert end == pytest.approx(w_end, abs=TOLERANCE)
    for part in parts[1:]:
        assert not any(a < part.start < b for a, b in twenty_minutes.words)  # cut in a pause
    # The subtitles continue across parts; the reply carries .txt and .srt.
    srt = render.to_srt(t)
    assert srt is not None and "00:19:" in srt
    reply = replies.transcript_reply(done, limit=4096, max_messages=3)
    assert [f.filename.rsplit(".", 1)[1] for f in reply.files] == ["txt", "srt"]
    # Progress said which part was running (two at a time: parts 1-2, then 3-4, ...).
    lines = [replies.progress_text(j) for j in h.out.progressed]
    assert [line.split("… ")[1].split(",")[0] for line in lines] == [
        f"part {n} of {len(parts)}" for n in range(1, len(parts) + 1, 2)
    ]


async def test_long_audio_limits_count_the_whole_recording_before_paying(
    tmp_path: Path, whisper: FakeOpenAi, twenty_minutes: Recording
) -> None:
    h = long_harness(tmp_path, whisper, max_audio_minutes=15)
    core = await h.open()
    try:
        with pytest.raises(AudioTooLong, match="15 minutes"):
            await core.service.transcribe(ORIGIN, twenty_minutes.data, "meeting.ogg")
        assert await core.store.recent(5) == []
    finally:
        await h.close()
    h = long_harness(tmp_path, whisper, daily_audio_minutes_per_user=19)
    core = await h.open()
    try:
        with pytest.raises(LimitExceeded):
            await core.service.transcribe(ORIGIN, twenty_minutes.data, "meeting.ogg")
        assert await core.store.recent(5) == []
    finally:
        await h.close()
    assert whisper.submits["transcriptions"] == 0


async def test_long_audio_transcript_with_a_gap_is_not_reused_for_a_resend(
    tmp_path: Path, whisper: FakeOpenAi
) -> None:
    from dataclasses import replace

    from bot.model.job import NewJob
    from testkit.fakes.audio import make_tone

    h = long_harness(tmp_path, whisper)
    core = await h.open()
    try:
        note = make_tone(1.0)
        first = await core.service.transcribe(ORIGIN, note, "a.ogg", dedup_key="file-1")
        await h.drive()
        assert first.dedup_key is not None
        gapped = {"text": "x [part 2 of 3 (…) is missing: …]", "missing_parts": 1}
        new = NewJob(first.kind, ORIGIN, first.provider, first.model, {}, 1e12)
        await core.store.create(
            replace(new, dedup_key=first.dedup_key),
            now=h.clock.advance(1),
            state=JobState.COMPLETED,
            result=gapped,
        )
        again = await core.service.transcribe(ORIGIN, note, "a.ogg", dedup_key="file-1")
    finally:
        await h.close()
    assert again.state is JobState.QUEUED  # sent again, not the gapped transcript reused


async def test_long_audio_live_text_grows_by_finished_parts_across_a_restart(
    tmp_path: Path, whisper: FakeOpenAi, twenty_minutes: Recording
) -> None:
    h = long_harness(tmp_path, whisper)
    core = await h.open()
    try:
        job = await core.service.transcribe(ORIGIN, twenty_minutes.data, "meeting.ogg")
        for _ in range(2):  # split, then the first parts: the process then stops
            current = await core.store.get(job.id)
            assert current is not None
            await core.worker.advance(current, h.clock.advance(1))
        parts = await core.store.parts.of(job.id)
    finally:
        await h.close()
    finished = sum(1 for p in parts if p.state is JobState.COMPLETED)
    assert 0 < finished < len(parts)
    later = long_harness(tmp_path, whisper)
    later.clock.now = h.clock.now + 60.0  # past the stopped process's lease
    await later.open()
    try:
        await later.drive()
    finally:
        await later.close()
    assert h.out.delivered == []
    [(done, _)] = later.out.delivered  # the final reply, once
    assert done.transcript is not None
    final = done.transcript.text
    before = [partial_text(j) or "" for j in h.out.progressed if partial_text(j)]
    after = [partial_text(j) or "" for j in later.out.progressed if partial_text(j)]
    assert before and after
    # Only finished parts are shown: every text so far is the start of the final transcript,
    # growing, and the restarted process goes on from the parts stored before it stopped.
    assert all(final.startswith(text) for text in before + after)
    sizes = [len(text) for text in before + after]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert whisper.submits["transcriptions"] == len(parts)  # no finished part paid twice
