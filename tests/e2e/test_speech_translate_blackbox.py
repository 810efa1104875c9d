"""Black box: ``voicebot run`` with the local engine (tiny.en) on Telegram, SIGKILLed while its
Translate → English run (Whisper's translate task) is in flight; after the restart the run is
started again from the recording the job holds (free: local) and the translation arrives once."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
from pathlib import Path

import pytest
import yaml

from bot.audio import codec as audio
from bot.model.speech import TtsOptions
from bot.providers.local.piper import PiperTextToSpeech
from bot.providers.local.settings import PiperSettings
from testkit.fakes.telegram import Call, FakeTelegram
from testkit.local_engines import SENTENCE, VOICE, joe_voice_path, local_sections, word_error_rate
from testkit.process import start_voicebot_run
from testkit.support import config_dict, until_answered

pytestmark = pytest.mark.timeout(240)
USER = 4646
TIMES = 8  # the sentence said 8 times (about 45 s): a run long enough to be caught mid-way


async def long_note() -> bytes:
    piper = PiperTextToSpeech("test", PiperSettings(voices_dir=joe_voice_path().parent))
    try:
        wav = await piper.submit(SENTENCE, TtsOptions(model="piper", voice=VOICE))
    finally:
        piper.close()
    return audio.to_voice_clip([wav.data] * TIMES).ogg


def text_job_state(db: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            row = conn.execute("SELECT state FROM jobs WHERE kind = 'text'").fetchone()
        except sqlite3.OperationalError:
            return None
    return str(row[0]) if row else None


async def until_state(db: Path, state: str, timeout: float = 90.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while text_job_state(db) != state:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the translation never got {state}: {text_job_state(db)}")
        await asyncio.sleep(0.02)


def translated(call: Call, transcript: int) -> bool:
    """A final edit with the English text, of another message than the transcript."""
    text, edited = call.text or "", call.params.get("message_id")
    final = call.method == "editMessageText" and "…" not in text
    return final and edited != transcript and "quick brown" in text.lower()


async def test_speech_translation_blackbox_sigkill_mid_run_translates_once(
    tmp_path: Path,
) -> None:
    note = await long_note()
    async with FakeTelegram() as tg:
        data = config_dict(tmp_path, **local_sections(tmp_path, cpu_threads=1))
        data["jobs"] = {"max_poll_interval": 1}
        data["telegram"] = {"token": tg.token, "api_base": tg.api_base}
        config, log, db = (
            tmp_path / "config.yaml",
            tmp_path / "bot.log",
            tmp_path / "voicebot.sqlite3",
        )
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        proc = await start_voicebot_run(config, log)
        try:
            await tg.wait_held(timeout=60)
            tg.send_voice(USER, USER, note, duration=45)
            done = await tg.wait_for(
                lambda c: (
                    c.method == "editMessageText" and "en:" in str(c.params.get("reply_markup"))
                ),
                timeout=120,
            )
            [button] = [b for row in done.params["reply_markup"]["inline_keyboard"] for b in row]
            mid = int(done.params["message_id"])
            tg.press_button(USER, USER, mid, button["callback_data"])
            await until_state(db, "submitted")  # the run is on the engine's thread
            proc.kill()
            assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
            assert text_job_state(db) == "submitted"  # the kill landed mid-run
            start = len(tg.calls)
            proc = await start_voicebot_run(config, log)
            answer = await tg.wait_for(lambda c: translated(c, mid), start=start, timeout=120)
            await until_answered(db)  # recorded delivered: no second answer can follow
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        answers = [c for c in tg.sent(USER) if translated(c, mid)]
    assert answers == [answer]
    assert word_error_rate(" ".join([SENTENCE] * TIMES), answer.text or "") < 0.35
    assert text_job_state(db) == "completed"
    # The worker's own line for any speech run a restart lost (a translation is one).
    assert re.search(r"job \w+: local lost the run \(.*\); running it again", log.read_text())
