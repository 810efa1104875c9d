"""Black box on Discord: ``voicebot run`` SIGKILLed in the middle of a long recording's parts and
again in the middle of its summary's pieces. After each restart the work goes on from what was
stored: no finished part or piece is paid again, the transcript (.txt + .srt) arrives once with
its buttons, and the summary answers (the press after the interrupted one reuses its pieces)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testkit.fakes.chat import FakeChat
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.discord_world import JSON
from testkit.fakes.openai import FakeOpenAi
from testkit.process import start_voicebot_run
from testkit.support import part_states, until, write_config
from testkit.synth import speechlike

pytestmark = pytest.mark.timeout(240)
KEY = "test-key"


@pytest.fixture
async def dc_whisper_chat() -> AsyncIterator[tuple[FakeDiscord, FakeOpenAi, FakeChat]]:
    async with FakeDiscord() as dc, FakeOpenAi(KEY) as whisper, FakeChat(KEY) as chat:
        yield dc, whisper, chat


def config(tmp_path: Path, dc: FakeDiscord, whisper: FakeOpenAi, chat: FakeChat) -> Path:
    return write_config(
        tmp_path,
        providers={
            "whisper": {
                "type": "openai",
                "base_url": whisper.url,
                "api_key": KEY,
                "max_upload_bytes": 1_000_000,  # parts of about 4 minutes
            },
            "brain": {"type": "openai", "base_url": chat.url, "api_key": KEY},
        },
        stt={"provider": "whisper", "model": "whisper-1"},
        llm={"provider": "brain", "model": "gpt-4o-mini", "max_input_tokens": 1000},
        jobs={"deadline_seconds": 600, "max_poll_interval": 1, "part_concurrency": 1},
        discord={
            "token": dc.token,
            "api_base": dc.api_base,
            "gateway_url": dc.gateway_url,
            "message_content": True,
            "ready_timeout": 20,
            "max_messages": 1,
        },
    )


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.kill()
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL


def whisper_holds(whisper: FakeOpenAi) -> bool:
    """The fake holds a part unanswered (received after the answered ones)."""
    return len(whisper.requests_to("transcriptions")) > whisper.submits["transcriptions"]


def mid_work(states: list[str]) -> bool:
    return states.count("completed") >= 1 and "submitting" in states


async def test_long_audio_discord_blackbox_sigkill_mid_parts_and_mid_summary(
    tmp_path: Path, dc_whisper_chat: tuple[FakeDiscord, FakeOpenAi, FakeChat]
) -> None:
    dc, whisper, chat = dc_whisper_chat
    # Part 2 and piece 2 are held in flight (received, unanswered) until the kill lands.
    whisper.listen, whisper.answer_limit, chat.answer_limit = True, 1, 1
    path, db = config(tmp_path, dc, whisper, chat), tmp_path / "voicebot.sqlite3"
    recording = speechlike(9 * 60, seed=5)
    log = tmp_path / "bot.log"
    proc = await start_voicebot_run(path, log)
    try:
        await dc.wait_for(lambda: dc.commands.get(None), timeout=30)
        voice = await dc.send_voice_message(None, None, recording.data, 540.0)
        await until(lambda: mid_work(part_states(db, "stt")) and whisper_holds(whisper))
        await kill(proc)  # mid-parts
        whisper.release()
        proc = await start_voicebot_run(path, log)

        def transcript() -> JSON | None:
            for m in dc.bot_messages():
                names = [a["filename"] for a in m.get("attachments") or ()]
                replying = (m.get("message_reference") or {}).get("message_id") == voice["id"]
                if replying and any(n.endswith(".srt") for n in names) and m.get("components"):
                    return m
            return None

        message = await dc.wait_for(transcript, timeout=120)
        custom_id = message["components"][0]["components"][0]["custom_id"]
        assert custom_id.startswith("voicebot:sum:")
        first = dc.interaction(await dc.press_button(message, custom_id))
        await until(lambda: mid_work(part_states(db, "text")) and chat.holding())
        await kill(proc)  # mid-summary
        chat.release()
        proc = await start_voicebot_run(path, log)
        await dc.wait_for(lambda: first.original and "failed" in first.original["content"], 60)
        second = dc.interaction(await dc.press_button(message, custom_id))
        await dc.wait_for(
            lambda: second.original and "Summary of" in second.original["content"], timeout=120
        )
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stt = part_states(db, "stt")
    sent = sorted(r.files["file"].filename for r in whisper.requests_to("transcriptions"))
    assert sent == [f"part-{i + 1}.ogg" for i in range(len(stt))]  # each part sent once
    assert "a restart interrupted it" in (first.original or {}).get("content", "")
    pieces = [r.json["messages"][1]["content"] for r in chat.requests_to("chat")]
    maps = [p for p in pieces if not p.startswith("Summary of")]
    # Each piece asked once, but the one the kill caught (maybe charged, so not resent by the
    # interrupted job; the second press asks it again); the reduce once.
    assert len(maps) == len(set(maps)) + 1 and len(pieces) == len(maps) + 1
    assert chat.submits["chat"] == len(pieces)
