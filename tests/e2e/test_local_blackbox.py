"""Black box, keyless: ``voicebot run`` with no provider key answers a Telegram voice note and
/speak through the offline engines (the example config's fallbacks)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.fakes.telegram import Call, FakeTelegram
from testkit.fakes.voices import FakeVoiceHost
from testkit.local_engines import (
    SENTENCE,
    VOICE,
    joe_voice_path,
    local_config_dict,
    tiny_en_path,
    word_error_rate,
)
from testkit.local_engines import voice_note as _voice_note
from testkit.process import BotProcess, start_voicebot_run, voicebot
from testkit.support import config_dict, until_answered

USER = 4242


def keyless_config(tmp_path: Path, tg: FakeTelegram, voice_source: str | None = None) -> Path:
    """The example's shape: hosted routes without a key, falling back to ``local``. With a
    ``voice_source``, voices_dir starts empty (a fresh install) and the voice is fetched."""
    data = config_dict(tmp_path)
    local: dict[str, Any] = {
        "type": "local",
        "download_dir": str(tmp_path / "models"),
        "offline": True,
        "voices_dir": str(joe_voice_path().parent),
    }
    if voice_source is not None:
        local.update(offline=False, voices_dir=str(tmp_path / "voices"), voice_source=voice_source)
    data["providers"] = {
        "nanogpt": {"api_key": "${NANOGPT_API_KEY}", "base_url": "http://127.0.0.1:9/api"},
        "local": local,
    }
    data["stt"] = {
        "provider": "nanogpt",
        "fallback": {"provider": "local", "model": str(tiny_en_path())},
    }
    data["tts"] = {"provider": "nanogpt", "fallback": {"provider": "local", "voice": VOICE}}
    data["jobs"] = {"max_poll_interval": 1}
    data["telegram"] = {"token": tg.token, "api_base": tg.api_base}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _final_reply_to(message: dict[str, Any]) -> Any:
    def match(call: Call) -> bool:
        if call.method == "sendMessage":
            reply = call.params.get("reply_parameters") or {}
            return reply.get("message_id") == message["message_id"] and "…" not in (call.text or "")
        return call.method == "editMessageText" and "…" not in (call.text or "")

    return match


@pytest.mark.parametrize("fresh", [False, True], ids=["voice_present", "voice_fetched"])
async def test_local_blackbox_telegram_voice_note_and_speak_without_any_key(
    tmp_path: Path, fresh: bool
) -> None:
    note = await _voice_note(SENTENCE)
    onnx = joe_voice_path()
    files = (onnx.read_bytes(), onnx.with_name(onnx.name + ".json").read_bytes())
    async with FakeTelegram() as tg, FakeVoiceHost({VOICE: files}) as host:
        config = keyless_config(tmp_path, tg, host.url if fresh else None)
        log = tmp_path / "bot.log"
        proc = await start_voicebot_run(config, log)  # the subprocess env has no *_API_KEY
        try:
            await tg.wait_held(timeout=60)
            voice = tg.send_voice(USER, USER, note, duration=6)
            answer = await tg.wait_for(_final_reply_to(voice), timeout=120)
            tg.send_text(USER, USER, "/speak Hello from the offline voice.")
            spoken = await tg.wait_for(lambda c: c.method == "sendVoice" and c.ok, timeout=120)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = log.read_text(errors="replace")
    assert "stt: local" in text and "set NANOGPT_API_KEY to use nanogpt" in text
    assert answer.text is not None
    assert word_error_rate(SENTENCE, answer.text) <= 0.25, answer.text
    upload = spoken.upload
    assert upload is not None and upload.data.startswith(b"OggS")
    assert len(host.requests) == (2 if fresh else 0)  # .onnx.json and .onnx, once
    if fresh:
        assert "downloading Piper voice en_US-joe-medium (63.2 MB)" in text


async def test_local_blackbox_cli_transcribe_and_speak_without_any_key(tmp_path: Path) -> None:
    note = tmp_path / "note.ogg"
    note.write_bytes(await _voice_note(SENTENCE))
    async with FakeTelegram() as tg:  # only for a valid config; the CLI does not start adapters
        config = keyless_config(tmp_path, tg)
    code, out, err = await voicebot("--config", str(config), "transcribe", str(note))
    assert code == 0, err
    assert word_error_rate(SENTENCE, out) <= 0.25, out
    code, srt, err = await voicebot(
        "--config", str(config), "transcribe", str(note), "--format", "srt"
    )
    assert code == 0 and srt.startswith("1\n00:00:00,000 --> "), err
    spoken = tmp_path / "hello.ogg"
    code, _, err = await voicebot(
        "--config", str(config), "speak", "Hello there.", "--output", str(spoken)
    )
    assert code == 0, err
    assert spoken.read_bytes().startswith(b"OggS")


async def test_local_cli_provider_option_uses_the_instance_default_model(tmp_path: Path) -> None:
    note = tmp_path / "note.ogg"
    note.write_bytes(await _voice_note("Hello."))
    data = local_config_dict(tmp_path, voices_dir=str(joe_voice_path().parent))  # empty cache
    data["stt"] = {"provider": "nanogpt", "model": "Whisper-Large-V3"}  # has a (test) key
    config = tmp_path / "routes.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    # NanoGPT's model would be refused by the local engine; `local` defaults to `base`, which is
    # not in the cache: a clear failure, not a download and not a wrong model name.
    code, _, err = await voicebot(
        "--config", str(config), "transcribe", str(note), "--provider", "local"
    )
    assert code == 1
    assert "The local speech model could not be loaded" in err and "Whisper-Large-V3" not in err


async def test_local_blackbox_sigkill_mid_transcription_reruns_and_answers_once(
    tmp_path: Path,
) -> None:
    text = " ".join([SENTENCE] * 6)  # ~35 s of speech: still running when the bot is killed
    note = await _voice_note(text)
    async with FakeTelegram() as tg:
        config, log = keyless_config(tmp_path, tg), tmp_path / "bot.log"
        proc = await start_voicebot_run(config, log)
        try:
            await tg.wait_held(timeout=60)
            voice = tg.send_voice(USER, USER, note, duration=35)
            await _until_state(tmp_path / "voicebot.sqlite3", "submitted")
            proc.kill()  # SIGKILL while the engine is transcribing: no cleanup at all
            assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
            start = len(tg.calls)
            proc = await start_voicebot_run(config, log)
            answer = await tg.wait_for(_final_reply_to(voice), timeout=120, start=start)
            await until_answered(tmp_path / "voicebot.sqlite3")  # no second answer can follow
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        finals = [c for c in tg.sent(USER) if _final_reply_to(voice)(c)]
    assert finals == [answer]  # one transcript, not an "interrupted" failure, not two
    assert answer.text is not None and word_error_rate(text, answer.text) <= 0.25, answer.text
    assert "lost the run" in log.read_text(errors="replace")  # rerun from the kept input


async def test_local_blackbox_long_voice_note_streams_drafts_then_replies_once(
    tmp_path: Path,
) -> None:
    text = " ".join([SENTENCE] * 24)  # a few minutes of speech: many segments, many polls
    note = await _voice_note(text)
    async with FakeTelegram() as tg:
        bot = BotProcess(keyless_config(tmp_path, tg), tmp_path / "bot.log")
        await bot.start()
        try:
            await tg.wait_held(timeout=60)
            voice = tg.send_voice(USER, USER, note, duration=180)
            answer = await tg.wait_for(_final_reply_to(voice), timeout=240)
            await until_answered(tmp_path / "voicebot.sqlite3")
        finally:
            assert await bot.end(signal.SIGTERM, timeout=15) == 0
        sent = tg.sent(USER)
    finals = [c for c in sent if _final_reply_to(voice)(c)]
    drafts = [c for c in sent if c.method == "sendMessageDraft"]
    assert finals == [answer] and answer.text is not None  # the final reply, once
    # The text so far streamed as drafts into the private chat (one draft, the placeholder's
    # id), growing, each part of the final reply; the placeholder kept its status and button.
    final = html.unescape(answer.text)
    assert drafts and {d.params["draft_id"] for d in drafts} == {answer.params["message_id"]}
    assert all((d.text or "").lstrip("…") in final for d in drafts), drafts
    edits = [c for c in sent if c.method == "editMessageText" and c is not answer]
    assert all("reply_markup" in c.params and "Transcribing…" in (c.text or "") for c in edits)


async def _until_state(db: Path, state: str, timeout: float = 60.0) -> None:
    """Wait until the (only) job reaches ``state``, reading the bot's database as it runs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if _job_state(db) == state:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no job reached {state!r} within {timeout} s")


def _job_state(db: Path) -> str | None:
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        rows = conn.execute("SELECT state FROM jobs").fetchall()
    return str(rows[0][0]) if rows else None
