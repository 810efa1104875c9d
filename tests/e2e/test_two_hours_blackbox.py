"""Black box, both platforms: a 2-hour recording sent to ``voicebot run`` (a subprocess), SIGKILLed
while its parts are in flight and again while its summary waits out a 429; after each restart the
work goes on from the store. The transcript arrives once (message + .txt + .srt, subtitles to the
end of the 2 hours), each part is sent once (those the kill caught are marked, not resent), and
the summary arrives once with no chat request charged twice.

Kept cheap: the recording is synthesized once (``two_hours_recording``, at 10 kb/s) and the fake
speech server answers at once without decoding, so the bot's own split of 2 hours of audio is
most of the time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from testkit.fakes.chat import FakeChat
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.openai import FakeOpenAi
from testkit.fakes.telegram import Call, FakeTelegram
from testkit.process import sigkill, start_voicebot_run, terminate
from testkit.support import part_states, until, until_answered, write_config
from testkit.synth import TWO_HOURS, srt_end

pytestmark = pytest.mark.timeout(300)
KEY = "test-key"
SECONDS = TWO_HOURS
USER = 4545
ANSWERED_PARTS = 5  # then the next parts are held in flight until the kill
ANSWERED_PIECES = 4  # then the next summary request is refused with a 429 (Retry-After below)
# Long enough for the test to see the 429 and SIGKILL the bot before it asks again (each test checks
# that it did: the refused piece not yet resent at the kill), short since the restarted bot waits
# it out too.
RETRY_AFTER = 3
WAIT = 180.0  # seconds: splitting two hours of audio takes most of a minute on a loaded machine
# Each part "says" about 120 words: the transcript (about 1,700 words) is summarized in 7 pieces.
PART_TEXT = " ".join(
    f"Sentence {i} of this part is about the budget, the roadmap and who does what next."
    for i in range(8)
)


@pytest.fixture
async def services() -> AsyncIterator[tuple[FakeOpenAi, FakeChat]]:
    async with FakeOpenAi(KEY) as whisper, FakeChat(KEY) as chat:
        whisper.quick, whisper.text = True, PART_TEXT
        whisper.answer_limit = ANSWERED_PARTS
        chat.retry_after, chat.rate_limit_after = RETRY_AFTER, ANSWERED_PIECES
        yield whisper, chat


def config(tmp_path: Path, whisper: FakeOpenAi, chat: FakeChat, **platform: Any) -> Path:
    return write_config(
        tmp_path,
        providers={
            "whisper": {
                "type": "openai",
                "base_url": whisper.url,
                "api_key": KEY,
                "max_upload_bytes": 3 * 1024 * 1024,  # parts of 10 minutes: 14 of them
            },
            "brain": {"type": "openai", "base_url": chat.url, "api_key": KEY},
        },
        stt={"provider": "whisper", "model": "whisper-1"},
        llm={"provider": "brain", "model": "gpt-4o-mini", "max_input_tokens": 800},
        limits={"max_audio_minutes": 130},
        jobs={"deadline_seconds": 600, "max_poll_interval": 1, "part_concurrency": 2},
        **platform,
    )


def parts_in_flight(db: Path, whisper: FakeOpenAi) -> bool:
    """The answered parts are stored finished and the fake holds the next ones unanswered."""
    states = part_states(db, "stt")
    held = len(whisper.requests_to("transcriptions")) > whisper.submits["transcriptions"]
    return held and states.count("completed") >= ANSWERED_PARTS and "submitting" in states


def summary_waiting(db: Path, chat: FakeChat) -> bool:
    """The 429 was answered and the bot put that piece back in the queue: nothing in flight."""
    states = part_states(db, "text")
    refused = len(chat.requests_to("chat")) > chat.submits["chat"]
    return refused and states.count("completed") >= ANSWERED_PIECES and "submitting" not in states


def asked(chat: FakeChat) -> list[tuple[str, str]]:
    """Each summary request's (instructions, text), in order: a piece is named by its prompt."""
    return [
        (r.json["messages"][0]["content"], r.json["messages"][1]["content"])
        for r in chat.requests_to("chat")
    ]


async def kill_while_waiting(proc: asyncio.subprocess.Process, chat: FakeChat) -> None:
    """SIGKILL the bot while it waits out the 429: the refused piece was not asked again yet."""
    await sigkill(proc)
    prompts = asked(chat)
    assert len(prompts) == len(set(prompts)), "the kill came after the retry, not during the wait"


def check_parts(db: Path, whisper: FakeOpenAi) -> list[str]:
    """Each part sent exactly once; those the kill caught in flight failed (a marked gap)."""
    states = part_states(db, "stt")
    sent = sorted(r.files["file"].filename for r in whisper.requests_to("transcriptions"))
    assert len(states) == 14 and sent == sorted(f"part-{i + 1}.ogg" for i in range(14))
    assert states.count("failed") in (1, 2) and states.count("completed") >= 12
    return states


def check_srt(srt: bytes, states: list[str]) -> None:
    """Subtitles on the recording's clock to its end; the gaps say which part and why."""
    assert srt_end(srt) >= SECONDS - 60  # the last cue ends in the last minute
    gap = states.index("failed") + 1
    assert f"[part {gap} of 14" in srt.decode()


def check_charges(chat: FakeChat) -> None:
    """Every summary request charged once: the pieces (one refused with a 429, then asked
    again: charged once) and the one reduce. A piece is named by its prompt ("part 3 of 7")."""
    prompts = asked(chat)
    maps = [a for a in prompts if "summarize part " in a[0]]
    reduce = [a for a in prompts if a not in maps]
    assert len(reduce) == 1 and len(maps) == len(set(maps)) + 1  # the 429'd one, resent
    assert chat.submits["chat"] == len(set(maps)) + 1 >= ANSWERED_PIECES + 2


async def test_two_hours_blackbox_telegram_sigkill_mid_parts_and_mid_summary(
    tmp_path: Path, two_hours_recording: bytes, services: tuple[FakeOpenAi, FakeChat]
) -> None:
    whisper, chat = services
    recording = two_hours_recording
    db, log = tmp_path / "voicebot.sqlite3", tmp_path / "bot.log"
    async with FakeTelegram() as tg:
        telegram = {"token": tg.token, "api_base": tg.api_base, "max_messages": 1}
        path = config(tmp_path, whisper, chat, telegram=telegram)
        proc = await start_voicebot_run(path, log)
        try:
            await tg.wait_held(timeout=60)
            tg.send_voice(USER, USER, recording, duration=SECONDS)
            await until(lambda: parts_in_flight(db, whisper), WAIT)
            await sigkill(proc)  # mid-parts
            whisper.release()
            proc = await start_voicebot_run(path, log)

            document = await tg.wait_for(lambda c: c.sent_document(".srt"), timeout=180)
            assert document.message is not None
            button = document.button("sum:")
            tg.press_button(USER, USER, document.message["message_id"], button)
            await until(lambda: summary_waiting(db, chat), WAIT)
            await kill_while_waiting(proc, chat)  # mid-summary, while it waits out the 429
            proc = await start_voicebot_run(path, log)

            def summary(call: Call) -> bool:
                return call.method == "editMessageText" and "Summary of" in (call.text or "")

            await tg.wait_for(summary, timeout=120)
            await until_answered(db)  # recorded delivered: no second answer can follow
        finally:
            await terminate(proc)
        sent = tg.sent(USER)
    states = check_parts(db, whisper)
    documents = [c.files["document"] for c in sent if c.method == "sendDocument"]
    assert sorted(d.filename.rsplit(".", 1)[1] for d in documents) == ["srt", "txt"]
    notes = [c for c in sent if "attached as a file" in (c.text or "")]
    assert len(notes) == 1  # the message of the one answer
    check_srt(next(d.data for d in documents if d.filename.endswith(".srt")), states)
    assert len([c for c in sent if "Summary of" in (c.text or "")]) == 1
    check_charges(chat)


async def test_two_hours_blackbox_discord_sigkill_mid_parts_and_mid_summary(
    tmp_path: Path, two_hours_recording: bytes, services: tuple[FakeOpenAi, FakeChat]
) -> None:
    whisper, chat = services
    recording = two_hours_recording
    db, log = tmp_path / "voicebot.sqlite3", tmp_path / "bot.log"
    async with FakeDiscord() as dc:
        discord = {
            "token": dc.token,
            "api_base": dc.api_base,
            "gateway_url": dc.gateway_url,
            "message_content": True,
            "ready_timeout": 20,
            "max_messages": 1,
        }
        path = config(tmp_path, whisper, chat, discord=discord)
        proc = await start_voicebot_run(path, log)
        try:
            await dc.wait_for(lambda: dc.commands.get(None), timeout=60)
            voice = await dc.send_voice_message(None, None, recording, float(SECONDS))
            await until(lambda: parts_in_flight(db, whisper), WAIT)
            await sigkill(proc)  # mid-parts
            whisper.release()
            proc = await start_voicebot_run(path, log)

            def answers() -> list[dict[str, Any]]:
                return [
                    m
                    for m in dc.bot_messages()
                    if (m.get("message_reference") or {}).get("message_id") == voice["id"]
                    and m.get("attachments")
                ]

            def transcript() -> dict[str, Any] | None:
                done = [m for m in answers() if "voicebot:sum:" in str(m.get("components"))]
                return done[0] if done else None

            message = await dc.wait_for(transcript, timeout=180)
            custom_id = message["components"][0]["components"][0]["custom_id"]
            record = dc.interaction(await dc.press_button(message, custom_id))
            await until(lambda: summary_waiting(db, chat), WAIT)
            await kill_while_waiting(proc, chat)  # mid-summary, while it waits out the 429
            proc = await start_voicebot_run(path, log)
            await dc.wait_for(
                lambda: record.original and "Summary of" in record.original["content"], 120
            )
            await until_answered(db)  # recorded delivered: no second answer can follow
        finally:
            await terminate(proc)
        [answer] = answers()
        summaries = [m for m in dc.bot_messages() if "Summary of" in (m.get("content") or "")]
    states = check_parts(db, whisper)
    files = {a["filename"].rsplit(".", 1)[1]: a for a in answer["attachments"]}
    assert sorted(files) == ["srt", "txt"] and "attached as a file" in answer["content"]
    check_srt(dc.world.files[int(files["srt"]["id"])][0], states)
    assert len(summaries) <= 1 and not record.followups  # one answer: the deferred response
    check_charges(chat)
