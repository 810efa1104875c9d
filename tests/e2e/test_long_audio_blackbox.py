"""Black box: SIGKILL ``voicebot run`` in the middle of a long recording's parts; after a restart
the parts still to do are sent, no finished part is paid again, and the one answer carries the
stitched transcript (.txt + .srt) with the interrupted part marked, not resent."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from pathlib import Path

import pytest
import yaml

from bot.chat.replies import INTERRUPTED_PART
from testkit.fakes.openai import FakeOpenAi
from testkit.fakes.telegram import Call, FakeTelegram
from testkit.process import start_voicebot_run
from testkit.support import config_dict, until_answered, whisper_route
from testkit.synth import speechlike

pytestmark = pytest.mark.timeout(240)

USER = 4343


def long_config(tmp_path: Path, tg: FakeTelegram, whisper: FakeOpenAi) -> Path:
    data = config_dict(tmp_path, **whisper_route(whisper))
    data["jobs"] = {"max_poll_interval": 1, "part_concurrency": 1}
    data["telegram"] = {"token": tg.token, "api_base": tg.api_base, "max_messages": 1}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def part_states(db: Path) -> list[str]:
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            rows = conn.execute("SELECT state FROM job_parts ORDER BY idx").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
    return [str(r[0]) for r in rows]


async def until_in_flight(db: Path, whisper: FakeOpenAi, timeout: float = 120.0) -> list[str]:
    """Until part 1 is stored finished and part 2 is in flight: recorded SUBMITTING by the bot
    and received (held unanswered) by the fake. Real conditions, not timing: under load the
    bot may take any time to get there."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        states = part_states(db)
        received = [r.files["file"].filename for r in whisper.requests_to("transcriptions")]
        if states[:2] == ["completed", "submitting"] and "part-2.ogg" in received:
            return states
        await asyncio.sleep(0.02)
    raise AssertionError(f"part 2 never got in flight: {part_states(db)}")


def srt_document(call: Call) -> bool:
    return call.method == "sendDocument" and call.sent_document(".srt")


async def test_long_audio_blackbox_sigkill_mid_parts_resumes_without_paying_twice(
    tmp_path: Path,
) -> None:
    recording = speechlike(12 * 60, seed=3)
    async with FakeTelegram() as tg, FakeOpenAi() as whisper:
        whisper.listen = True
        whisper.answer_limit = 1  # part 2 is held in flight until the kill
        config, log = long_config(tmp_path, tg, whisper), tmp_path / "bot.log"
        proc = await start_voicebot_run(config, log)
        try:
            await tg.wait_held(timeout=60)
            tg.send_voice(USER, USER, recording.data, duration=720)
            before = await until_in_flight(tmp_path / "voicebot.sqlite3", whisper)
            proc.kill()  # SIGKILL while part 2 is being transcribed
            assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
            whisper.release()
            start = len(tg.calls)
            proc = await start_voicebot_run(config, log)
            srt = await tg.wait_for(srt_document, timeout=120, start=start)
            await until_answered(tmp_path / "voicebot.sqlite3")  # no second answer can follow
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        documents = [c for c in tg.sent(USER) if c.method == "sendDocument"]
    assert before[:2] == ["completed", "submitting"]
    # Every part sent exactly once: the finished one not again, the interrupted one not again.
    sent = sorted(r.files["file"].filename for r in whisper.requests_to("transcriptions"))
    parts = part_states(tmp_path / "voicebot.sqlite3")
    assert len(parts) >= 3 and sent == [f"part-{i + 1}.ogg" for i in range(len(parts))]
    assert parts == ["completed", "failed", *["completed"] * (len(parts) - 2)]
    # One answer: the .txt and the .srt, the subtitles on the recording's clock to its end.
    assert sorted(d.files["document"].filename.rsplit(".", 1)[1] for d in documents) == [
        "srt",
        "txt",
    ]
    upload = srt.files["document"]
    text = upload.data.decode()
    assert "00:11:" in text and f"[part 2 of {len(parts)}" in text
    assert INTERRUPTED_PART in text
    assert "interrupted mid-submit" in log.read_text(errors="replace")
