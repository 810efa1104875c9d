"""Never pay twice for TTS: a synthesized answer whose audio URL fails to download is retried from
the stored URL (backoff, across restarts); the paid synthesis is never repeated."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model.job import JobState
from testkit.core import CoreWithFakes
from testkit.fakes.audio import decode_info
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import ORIGIN, harness_config

UNAVAILABLE = {"error": "upstream storage unavailable"}


async def test_tts_download_failure_retries_download_across_restart_never_resynthesizes(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.tts_mode = "json"  # answers {"audioUrl": ...}: synthesis paid, audio fetched after
    config = harness_config(tmp_path, nano, canto)
    first = CoreWithFakes(config)
    core = await first.open()
    for _ in range(3):
        nano.push("audio", 503, UNAVAILABLE, {"Retry-After": "2"})
    job = await core.service.speak(ORIGIN, "Hello there.")
    await core.poller.run_once()  # synthesis + failed download
    stored = await core.store.get(job.id)
    assert stored is not None and stored.state is JobState.SUBMITTED
    assert stored.ticket is not None and stored.ticket["audioUrl"].startswith(nano.audio_origin)
    assert stored.next_poll_at is not None and stored.next_poll_at > first.clock()
    first.clock.now = stored.next_poll_at
    await core.poller.run_once()  # first retry: still 503
    await first.close()  # crash between retries: only the database survives
    assert len(nano.requests_to("audio")) == 2

    second = CoreWithFakes(config)
    second.clock.now = first.clock.now
    await second.open()
    try:
        await second.drive()
        assert [j.id for j, _ in second.out.delivered] == [job.id]
        delivered, clip = second.out.delivered[0]
        assert delivered.state is JobState.COMPLETED and clip is not None
        assert decode_info(clip.ogg)[:2] == ("ogg", "opus")
        assert nano.submits["tts"] == 1  # paid once
        assert len(nano.requests_to("tts")) == 1  # and asked once
        urls = {r.path for r in nano.requests_to("audio")}
        assert len(urls) == 1 and len(nano.requests_to("audio")) == 4
        assert delivered.cost == pytest.approx(0.001)
    finally:
        await second.close()


async def test_tts_download_gone_fails_clearly_without_resynthesizing(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.tts_mode = "json"
    h = CoreWithFakes(harness_config(tmp_path, nano, canto))
    core = await h.open()
    try:
        nano.push("audio", 503, UNAVAILABLE)
        nano.push("audio", 404, "<html>no such file</html>")
        await core.service.speak(ORIGIN, "Hello there.")
        await h.drive()
        [(job, clip)] = h.out.delivered
        assert job.state is JobState.FAILED and clip is None
        assert job.error is not None and "no longer has the generated audio" in job.error
        assert nano.submits["tts"] == 1
    finally:
        await h.close()


async def test_tts_download_failure_of_one_part_keeps_the_others(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    nano.tts_mode = "json"
    config = harness_config(
        tmp_path, nano, canto, tts={"model": "tts-1"}, limits={"max_speak_chars": 0}
    )
    first = CoreWithFakes(config)
    core = await first.open()
    sentence = "This sentence is long enough to matter here. "
    text = (sentence * 100).strip()  # > 4096 characters: several parts
    job = await core.service.speak(ORIGIN, text)
    parts = len(job.options["parts"])
    assert parts >= 2
    nano.push("audio", 200, b"")  # the first part's download: an empty body (malformed)
    await core.poller.run_once()
    stored = await core.store.get(job.id)
    assert stored is not None and stored.state is JobState.SUBMITTED
    assert nano.submits["tts"] == parts
    await first.close()

    second = CoreWithFakes(config)
    second.clock.now = first.clock.now
    await second.open()
    try:
        await second.drive()
        [(delivered, clip)] = second.out.delivered
        assert delivered.state is JobState.COMPLETED and clip is not None
        assert clip.duration == pytest.approx(0.5 * parts, abs=0.1)  # every part, once
        assert nano.submits["tts"] == parts
    finally:
        await second.close()
