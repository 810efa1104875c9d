"""Black box, both platforms: a link to a 2-hour recording, sent to ``voicebot run`` (a
subprocess) on Telegram (the "Transcribe this link" button, in a group) and on Discord
(``/transcribe url:``), SIGKILLed in the middle of the download and restarted: one job, one
download to its end, one transcript (message + .txt + .srt naming the link) whose Summarize
button works. And the SSRF refusal with the default link settings: ``/transcribe`` of a
loopback link is answered with the reason, and the site behind it sees no request at all.

Kept fast: the recording is synthesized once (``two_hours_recording``), the site serves it
slowly only until the kill, and the speech model takes two hours in one request (no split: the
split is the 2-hour black box's and the long-recording tests')."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from testkit.fakes.audio import make_tone
from testkit.fakes.chat import FakeChat
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.discord_interactions import InteractionRecord
from testkit.fakes.openai import FakeOpenAi
from testkit.fakes.recording_site import RECORDING, RecordingSite
from testkit.fakes.telegram import Call, FakeTelegram
from testkit.process import sigkill, start_voicebot_run, terminate
from testkit.support import until, until_answered, write_config
from testkit.synth import TWO_HOURS, srt_end

pytestmark = pytest.mark.timeout(120)
KEY = "test-key"
USER, MEMBER = 4545, 4646
GROUP = -1004545
# About 5,000 characters "heard" in the two hours: more than one message, so .txt and .srt too.
HEARD = " ".join(
    f"Sentence {i} is about the budget and the roadmap for next year." for i in range(80)
)
MID_DOWNLOAD = 256 * 1024  # bytes of the recording served when the kill lands
SLOW = 128 * 1024  # bytes a second until then: the whole would take a minute


@pytest.fixture
async def services() -> AsyncIterator[tuple[FakeOpenAi, FakeChat]]:
    async with FakeOpenAi(KEY) as whisper, FakeChat(KEY) as chat:
        whisper.quick, whisper.text = True, HEARD
        yield whisper, chat


@contextlib.asynccontextmanager
async def serving(recording: bytes) -> AsyncIterator[RecordingSite]:
    site = RecordingSite(recording)
    await site.start()
    try:
        yield site
    finally:
        await site.stop()


@pytest.fixture
async def world(
    two_hours_recording: bytes, services: tuple[FakeOpenAi, FakeChat]
) -> AsyncIterator[tuple[RecordingSite, FakeOpenAi, FakeChat]]:
    async with serving(two_hours_recording) as site:
        yield site, *services


def config(
    tmp_path: Path, whisper: FakeOpenAi, chat: FakeChat, *, links: dict[str, Any], **platform: Any
) -> Path:
    return write_config(
        tmp_path,
        providers={
            "whisper": {"type": "openai", "base_url": whisper.url, "api_key": KEY},
            "brain": {"type": "openai", "base_url": chat.url, "api_key": KEY},
        },
        stt={"provider": "whisper", "model": "whisper-1"},
        llm={"provider": "brain", "model": "gpt-4o-mini"},
        limits={"max_audio_minutes": 130},
        jobs={"deadline_seconds": 600, "max_poll_interval": 1},
        links=links,
        **platform,
    )


# The test site is on loopback: opened for it alone, as a LAN would be.
TEST_SITE = {"allowed_networks": ["127.0.0.1/32"]}


def stt_jobs(db: Path) -> list[tuple[str, str]]:
    """(id, state) of every transcription job in a running bot's database."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        return [
            (str(i), str(s))
            for i, s in conn.execute("SELECT id, state FROM jobs WHERE kind = 'stt'")
        ]


async def kill_mid_download(proc: Any, site: RecordingSite, db: Path) -> None:
    """SIGKILL once part of the recording arrived, the job stored downloading."""
    await until(lambda: site.bytes[RECORDING] >= MID_DOWNLOAD, 60)
    await sigkill(proc)
    [(_, state)] = stt_jobs(db)
    assert state == "submitting" and site.finished == 0  # cut off mid-download
    site.rate = None


def check_once(db: Path, site: RecordingSite, whisper: FakeOpenAi, chat: FakeChat) -> None:
    """One job, completed; the download restarted once and finished once; the recording
    transcribed once and summarized once."""
    [(_, state)] = stt_jobs(db)
    assert state == "completed"
    assert site.downloads == 2 and site.finished == 1
    assert whisper.submits["transcriptions"] == len(whisper.requests_to("transcriptions")) == 1
    assert chat.submits["chat"] >= 1


def check_files(texts: dict[str, bytes], site: RecordingSite) -> None:
    """.txt naming the link, and subtitles to the end of the two hours."""
    assert sorted(texts) == ["srt", "txt"]
    assert site.url in texts["txt"].decode() and "Sentence 79" in texts["txt"].decode()
    assert srt_end(texts["srt"]) >= TWO_HOURS - 60


def replies_to(message: dict[str, Any]) -> Any:
    def match(call: Call) -> bool:
        reply = call.params.get("reply_parameters") or {}
        return call.method == "sendMessage" and reply.get("message_id") == message["message_id"]

    return match


async def test_links_blackbox_telegram_button_two_hour_link_survives_a_kill_mid_download(
    tmp_path: Path, world: tuple[RecordingSite, FakeOpenAi, FakeChat]
) -> None:
    site, whisper, chat = world
    db, log = tmp_path / "voicebot.sqlite3", tmp_path / "bot.log"
    async with FakeTelegram() as tg:
        tg.add_chat(GROUP, title="Podcasts")
        telegram = {"token": tg.token, "api_base": tg.api_base, "max_messages": 1}
        path = config(tmp_path, whisper, chat, links=TEST_SITE, telegram=telegram)
        proc = await start_voicebot_run(path, log)
        try:
            await tg.wait_held(timeout=30)
            shared = tg.send_text(GROUP, USER, f"The whole meeting: {site.url}")
            offer = await tg.wait_for(replies_to(shared), timeout=30)
            assert offer.message is not None and "link:0" in str(offer.params["reply_markup"])
            mark = len(tg.calls)
            tg.press_button(GROUP, MEMBER, offer.message["message_id"], "link:0")
            refused = await tg.wait_for("answerCallbackQuery", start=mark)
            assert "Only the person who sent this link" in str(refused.params.get("text"))
            assert site.total_requests == 0  # offered and refused: nothing fetched yet
            site.rate = SLOW
            tg.press_button(GROUP, USER, offer.message["message_id"], "link:0")
            await kill_mid_download(proc, site, db)
            proc = await start_voicebot_run(path, log)

            document = await tg.wait_for(lambda c: c.sent_document(".srt"), timeout=60)
            assert document.message is not None
            button = document.button("sum:")
            tg.press_button(GROUP, USER, document.message["message_id"], button)
            await tg.wait_for(lambda c: "Summary of" in (c.text or ""), timeout=60)
            await until_answered(db)
        finally:
            await terminate(proc)
        sent = tg.sent(GROUP)
    check_once(db, site, whisper, chat)
    files = {str(c.files["document"].filename).rsplit(".", 1)[1]: c for c in sent if c.files}
    check_files({k: c.files["document"].data for k, c in files.items()}, site)
    notes = [c for c in sent if "attached as a file" in (c.text or "")]
    assert len(notes) == 1 and site.url in (notes[0].text or "")  # the one answer names it
    assert len([c for c in sent if "Summary of" in (c.text or "")]) == 1


async def test_links_blackbox_discord_slash_two_hour_link_survives_a_kill_mid_download(
    tmp_path: Path, world: tuple[RecordingSite, FakeOpenAi, FakeChat]
) -> None:
    site, whisper, chat = world
    db, log = tmp_path / "voicebot.sqlite3", tmp_path / "bot.log"
    async with FakeDiscord() as dc:
        discord = {
            "token": dc.token,
            "api_base": dc.api_base,
            "gateway_url": dc.gateway_url,
            "ready_timeout": 20,
            "max_messages": 1,
        }
        path = config(tmp_path, whisper, chat, links=TEST_SITE, discord=discord)
        proc = await start_voicebot_run(path, log)
        try:
            await dc.wait_for(lambda: dc.commands.get(None), timeout=30)
            site.rate = SLOW
            record = dc.interaction(await dc.send_slash("transcribe", {"url": site.url}))
            await kill_mid_download(proc, site, db)
            proc = await start_voicebot_run(path, log)

            def transcript() -> dict[str, Any] | None:
                done = record.original
                return done if done and "voicebot:sum:" in str(done.get("components")) else None

            message = await dc.wait_for(transcript, timeout=60)
            custom_id = message["components"][0]["components"][0]["custom_id"]
            summary = dc.interaction(await dc.press_button(message, custom_id))
            await dc.wait_for(lambda: _says(summary, "Summary of"), timeout=60)
            await until_answered(db)
        finally:
            await terminate(proc)
    check_once(db, site, whisper, chat)
    assert record.callbacks == [{"type": 5}] and not record.followups  # one answer: the response
    files = {a["filename"].rsplit(".", 1)[1]: a for a in message["attachments"]}
    check_files({k: dc.world.files[int(a["id"])][0] for k, a in files.items()}, site)
    assert "attached as a file" in message["content"] and site.url in message["content"]


def _says(record: InteractionRecord, text: str) -> bool:
    return bool(record.original and text in record.original["content"])


async def test_links_blackbox_telegram_loopback_link_refused_by_default_nothing_fetched(
    tmp_path: Path, services: tuple[FakeOpenAi, FakeChat]
) -> None:
    whisper, chat = services
    log = tmp_path / "bot.log"
    async with FakeTelegram() as tg, serving(make_tone(2.0)) as site:
        telegram = {"token": tg.token, "api_base": tg.api_base}
        path = config(tmp_path, whisper, chat, links={}, telegram=telegram)  # the defaults
        proc = await start_voicebot_run(path, log)
        try:
            await tg.wait_held(timeout=30)
            command = tg.send_text(USER, USER, f"/transcribe {site.url}")
            answer = await tg.wait_for(replies_to(command), timeout=30)
            tg.send_text(USER, USER, f"and this one? {site.base}/audio.ogg")  # offered no button
            status = tg.send_text(USER, USER, "/status")
            await tg.wait_for(replies_to(status), timeout=30)
            await tg.wait_held(timeout=30)  # polling again: every update sent was handled
        finally:
            await terminate(proc)
        sent = tg.sent(USER)
    assert "private or local network address" in (answer.text or "")
    assert [c.method for c in sent] == ["sendMessage", "sendMessage"]  # the refusal, /status
    assert site.total_requests == 0 and site.total_bytes == 0
    assert whisper.requests_to("transcriptions") == []
