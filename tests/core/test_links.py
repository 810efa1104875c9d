"""Links in the core: the real LinkFetcher against the local media site (127.0.0.1 allowed by
``links.allowed_networks``), the real store and poller on a fake clock. A link is checked before
a byte of its media is fetched, downloaded by its durable job (progress, cancel, a restart
mid-download), and transcribed once, its reply naming the source."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.chat import replies, status
from bot.config.load import Config, parse_config
from bot.links import LinkRefused, LinkSettings
from bot.model.errors import AudioTooLong
from bot.model.job import JobState
from bot.service.limits import LimitExceeded
from testkit.core import CoreWithFakes
from testkit.fakes.media_site import MediaSite
from testkit.fakes.openai import FakeOpenAi
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import ORIGIN, config_dict, harness_config, until, whisper_route
from testkit.synth import Recording, speechlike

pytestmark = pytest.mark.timeout(60)

LOCAL = LinkSettings(allowed_networks=("127.0.0.1/32",))


class LinkSite(MediaSite):
    """The media site and ``/long.ogg``, a recording a test sets (``/stated.html`` states a
    two-hour recording in its JSON-LD metadata, what yt-dlp's generic extractor reads; the
    recording itself is the 2 s /audio.ogg)."""

    long_recording = b""  # served as /long.ogg when a test sets it

    def _pages(self) -> dict[str, Callable[[], web.Response]]:
        pages = super()._pages()
        long = self.long_recording
        pages["/long.ogg"] = lambda: self._send("/long.ogg", long, "audio/ogg")
        return pages


@pytest.fixture(scope="module")
def twenty_minutes() -> Recording:
    return speechlike(20 * 60)


@pytest.fixture
async def site() -> AsyncIterator[LinkSite]:
    served = LinkSite()
    await served.start()
    yield served
    await served.stop()


def links_config(config: Config, settings: LinkSettings = LOCAL, **limits: Any) -> Config:
    return dataclasses.replace(
        config, links=settings, limits=dataclasses.replace(config.limits, **limits)
    )


@pytest.fixture
def harness(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> Callable[..., CoreWithFakes]:
    """A core whose links may reach the local media site (``limits``: as the config's)."""

    def build(**limits: Any) -> CoreWithFakes:
        return CoreWithFakes(links_config(harness_config(tmp_path, nano, canto), **limits))

    return build


async def test_link_direct_media_transcribed_once_naming_its_source(
    harness: Callable[..., CoreWithFakes], site: LinkSite, nano: FakeNanoGpt
) -> None:
    async with harness() as h:
        url = f"{site.base}/audio.ogg"
        job = await h.core.service.transcribe_link(ORIGIN, url)
        assert job.state is JobState.QUEUED and job.options["link"]["url"] == url
        assert await h.core.store.kept.load_blob(job.id, "input") is None  # nothing fetched yet
        assert status.user_state(job) == "downloading"
        await h.drive()
        done = await h.only_result()
    assert done.state is JobState.COMPLETED, done.error
    assert nano.submits["transcribe"] == 1
    assert done.options["link"]["downloaded"] is True
    assert done.input_duration == pytest.approx(2.0, abs=0.1)
    [message] = replies.transcript_reply(done, limit=4096, max_messages=3).messages
    assert message.startswith(f"🔗 audio (2 seconds)\n{url}\n\n")
    assert "Fake transcript" in message
    # The placeholder said it was downloading, then how much had arrived, then moved on.
    shown = [replies.progress_text(job) for job in h.out.progressed]
    assert shown[0] == f"⬇️ Downloading the link… job {job.id}"
    assert shown[1] == f"⬇️ Downloading the link… 100 % (0 MB of 0 MB), job {job.id}"  # 19 kB
    assert shown[2] == f"🎙 Queued… job {job.id}" and len(shown) == 3


async def test_link_stating_a_length_over_the_limit_is_refused_before_any_media_byte(
    harness: Callable[..., CoreWithFakes], site: LinkSite
) -> None:
    async with harness(max_audio_minutes=60) as h:
        with pytest.raises(AudioTooLong) as refused:
            await h.core.service.transcribe_link(ORIGIN, f"{site.base}/stated.html")
        assert await h.core.store.recent(5) == []
    assert refused.value.user_message == (
        "This recording is 2 hours long; the limit is 1 hour per recording."
    )
    # yt-dlp asked the stated file what it is with one HEAD: no GET, no media byte.
    assert site.requests["/audio.ogg"] <= 1 and site.bytes["/audio.ogg"] == 0


async def test_link_daily_cap_counts_the_stated_length_before_any_media_byte(
    harness: Callable[..., CoreWithFakes], site: LinkSite
) -> None:
    async with harness(daily_audio_minutes_per_user=30, max_audio_minutes=0) as h:
        with pytest.raises(LimitExceeded, match="120 min"):
            await h.core.service.transcribe_link(ORIGIN, f"{site.base}/stated.html")
        assert await h.core.store.recent(5) == []
    assert site.bytes["/audio.ogg"] == 0


async def test_link_rate_limits_apply_and_a_double_press_is_the_same_job(
    harness: Callable[..., CoreWithFakes], site: LinkSite
) -> None:
    async with harness(concurrent_per_user=1) as h:
        first = await h.core.service.transcribe_link(ORIGIN, f"{site.base}/audio.ogg")
        again = await h.core.service.transcribe_link(ORIGIN, f"{site.base}/audio.ogg")
        assert again.id == first.id
        with pytest.raises(LimitExceeded, match="1 unfinished job"):
            await h.core.service.transcribe_link(ORIGIN, f"{site.base}/song.mp3")
        assert [j.id for j in await h.core.store.recent(5)] == [first.id]


async def test_link_refused_by_default_settings_loses_nothing(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese, site: LinkSite
) -> None:
    config = links_config(harness_config(tmp_path, nano, canto), LinkSettings())
    async with CoreWithFakes(config) as h:
        with pytest.raises(LinkRefused) as refused:
            await h.core.service.transcribe_link(ORIGIN, f"{site.base}/audio.ogg")
        assert await h.core.store.recent(5) == []
    assert "private or local network" in refused.value.user_message
    assert site.total_requests == 0


async def test_link_of_unstated_length_over_the_limit_fails_after_download_unpaid(
    harness: Callable[..., CoreWithFakes],
    site: LinkSite,
    nano: FakeNanoGpt,
    twenty_minutes: Recording,
) -> None:
    site.long_recording = twenty_minutes.data  # a plain file: its length is known once fetched
    async with harness(max_audio_minutes=10) as h:
        job = await h.core.service.transcribe_link(ORIGIN, f"{site.base}/long.ogg")
        await h.drive()
        failed = await h.only_result()
    assert failed.id == job.id and failed.state is JobState.FAILED
    assert replies.failure_text(failed) == (
        f"❌ Transcription failed (job {job.id}): "
        "This recording is 20 minutes long; the limit is 10 minutes per recording."
    )
    assert nano.submits["transcribe"] == 0


def downloading(h: CoreWithFakes) -> bool:
    """Whether the placeholder has shown bytes of the download arriving."""
    return any(job.input_bytes for job in h.out.progressed)


async def test_link_cancel_mid_download_stops_it_and_pays_nothing(
    harness: Callable[..., CoreWithFakes], site: LinkSite, nano: FakeNanoGpt
) -> None:
    async with harness() as h:
        job = await h.core.service.transcribe_link(ORIGIN, f"{site.base}/slow.mp3")
        step = asyncio.create_task(h.core.poller.run_once())
        await until(lambda: downloading(h), 20)
        shown = await h.core.store.get(job.id)
        assert shown is not None
        assert "download: " in status.render_job(shown, h.clock())
        cancelled = await h.core.service.cancel(ORIGIN, job.id, admin=False)
        assert not cancelled.sent  # "may still be charged" is not said of a download
        await asyncio.wait_for(step, 10)  # the download stopped well before the file's end
        sent = site.bytes["/slow.mp3"]
        assert 0 < sent < len(site.mp3)
        stored = await h.core.store.get(job.id)
        await h.drive()
    assert stored is not None and stored.state is JobState.CANCELLED
    assert nano.submits["transcribe"] == 0 and h.out.delivered == []


async def test_link_restart_mid_download_downloads_again_into_one_transcript(
    harness: Callable[..., CoreWithFakes], site: LinkSite, nano: FakeNanoGpt
) -> None:
    first = harness()
    await first.open()
    try:
        job = await first.core.service.transcribe_link(ORIGIN, f"{site.base}/slow.mp3")
        step = asyncio.create_task(first.core.poller.run_once())
        await until(lambda: downloading(first), 20)
        step.cancel()  # the process dies mid-download: its lease is left to expire
        with pytest.raises(asyncio.CancelledError):
            await step
    finally:
        await first.close()
    site.drip_delay = 0.0
    second = harness()
    second.clock.now = first.clock.now + 600  # past the dead process's lease
    async with second as h:
        await h.drive()
        done = await h.only_result()
        jobs = await h.core.store.recent(5)
    assert [j.id for j in jobs] == [job.id]
    assert done.state is JobState.COMPLETED and done.error is None
    assert nano.submits["transcribe"] == 1
    assert site.requests["/slow.mp3"] >= 2  # downloaded again from the start


@pytest.mark.timeout(240)
async def test_link_to_a_long_recording_is_split_into_parts_and_stitched(
    tmp_path: Path, site: LinkSite, twenty_minutes: Recording
) -> None:
    recording = twenty_minutes
    site.long_recording = recording.data
    async with FakeOpenAi() as whisper:
        whisper.listen = True  # hears the synthetic words, at their times
        data = config_dict(tmp_path, **whisper_route(whisper))
        config = links_config(parse_config(data, env={}), max_audio_minutes=0)
        async with CoreWithFakes(config, steps=200, dt=0.5) as h:
            job = await h.core.service.transcribe_link(ORIGIN, f"{site.base}/long.ogg")
            await h.drive()
            done = await h.only_result()
            parts = await h.core.store.parts.of(job.id)
        uploads = whisper.submits["transcriptions"]
    assert done.state is JobState.COMPLETED, done.error
    assert done.options["part_seconds"] and len(parts) == uploads >= 5
    assert done.input_duration == pytest.approx(20 * 60, abs=0.5)
    t = done.transcript
    assert t is not None and len(t.segments) == len(recording.words)
    assert t.segments[-1].start == pytest.approx(recording.words[-1][0], abs=0.06)
    reply = replies.transcript_reply(done, limit=4096, max_messages=3)
    txt = reply.files[0].data.decode()
    assert txt.startswith(f"🔗 long (20 minutes)\n{site.base}/long.ogg\n\n")


async def test_link_sent_again_reuses_its_transcript_at_no_cost(
    harness: Callable[..., CoreWithFakes], site: LinkSite, nano: FakeNanoGpt
) -> None:
    """A link already transcribed, sent again (here, or in another chat like a re-sent file),
    is answered from that transcript: nothing fetched (not even its metadata), nothing paid,
    no limit counted; other options are another transcript."""
    url = f"{site.base}/audio.ogg"
    elsewhere = dataclasses.replace(ORIGIN, chat_id="chat-2", user_id="user-2")
    async with harness(concurrent_per_user=1) as h:
        first = await h.core.service.transcribe_link(ORIGIN, url)
        await h.drive()
        done = await h.only_result()
        fetched = (site.total_requests, site.total_bytes)
        again = await h.core.service.transcribe_link(ORIGIN, url)
        other = await h.core.service.transcribe_link(elsewhere, url)
        await h.drive()
        assert (site.total_requests, site.total_bytes) == fetched
        german = await h.core.service.transcribe_link(ORIGIN, url, language="de")
        await h.drive()
        delivered = [job for job, _ in h.out.delivered]
    assert done.state is JobState.COMPLETED and done.transcript is not None
    assert [j.id for j in delivered] == [first.id, again.id, other.id, german.id]
    for reused in delivered[1:3]:
        assert reused.id != first.id and reused.state is JobState.COMPLETED
        assert reused.options["reused_from"] == first.id
        assert reused.result is not None and reused.result["cost"] == 0.0 and not reused.cost
        assert reused.transcript is not None and reused.transcript.text == done.transcript.text
        [message] = replies.transcript_reply(reused, limit=4096, max_messages=3).messages
        assert message.startswith(f"🔗 audio (2 seconds)\n{url}\n\n")
    assert "reused_from" not in german.options
    assert nano.submits["transcribe"] == 2  # the first, and the German one
