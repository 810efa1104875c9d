"""The CLI as a new user lives it: options anywhere, clear faults, progress, Ctrl-C cancels."""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from adapters.cli.main import _parser
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.process import ROOT, subprocess_env, voicebot
from testkit.support import write_config

TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
DC_TOKEN = "MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


def dead_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start(*args: str, stderr: int = asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        *args,
        cwd=ROOT,
        env=subprocess_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


async def test_cli_unreachable_provider_shows_attempts_and_gives_up_in_one_line(
    tmp_path: Path,
) -> None:
    port = dead_port()
    config = write_config(tmp_path, nano_url=f"http://127.0.0.1:{port}/api")
    audio = tmp_path / "note.ogg"
    audio.write_bytes(make_tone(1.0))
    began = time.monotonic()
    code, out, err = await voicebot(
        "transcribe", str(audio), "--config", str(config), "--give-up", "3"
    )
    assert code == 1 and out == ""
    assert time.monotonic() - began < 30
    lines = err.strip().splitlines()
    assert lines[0].startswith("voicebot: attempt 1 failed") and f"127.0.0.1:{port}" in lines[0]
    assert "connection refused" in lines[0]
    last = lines[-1]
    assert last.startswith("voicebot: gave up after") and "connection refused" in last
    assert "check providers.nanogpt.base_url" in last and "Traceback" not in err
    # The job was never sent, and it is cancelled, not left queued for the next command to pay.
    code, out, _ = await voicebot("--config", str(config), "jobs")
    assert code == 0 and "cancelled" in out and "queued" not in out


async def test_cli_sigint_before_submit_cancels_and_next_command_does_not_send_it(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    port = dead_port()
    config = write_config(tmp_path, nano_url=f"http://127.0.0.1:{port}/api")
    audio = tmp_path / "note.ogg"
    audio.write_bytes(make_tone(1.0))
    proc = await start("--config", str(config), "transcribe", str(audio))
    assert proc.stderr is not None
    first = await asyncio.wait_for(proc.stderr.readline(), 30)
    assert b"attempt 1 failed" in first
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 130
    assert b"before it was sent (nothing was charged)" in err
    # Same database, provider fixed: the cancelled job is final and never sent.
    config = write_config(tmp_path, nano_url=nano.url)
    other = tmp_path / "other.ogg"
    other.write_bytes(make_tone(1.5))
    code, _, err2 = await voicebot("--config", str(config), "transcribe", str(other))
    assert code == 0, err2
    assert nano.submits["transcribe"] == 1


async def test_cli_sigint_after_submit_stops_polling_and_warns_of_charge(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    nano.polls_to_complete = 10**6
    config = write_config(tmp_path, nano_url=nano.url)
    audio = tmp_path / "talk.ogg"
    audio.write_bytes(make_tone(1.0))
    proc = await start(
        "--config", str(config), "transcribe", str(audio), "--model", "Elevenlabs-STT"
    )
    await nano.wait_for("transcribe/status", timeout=30)
    assert nano.submits["transcribe"] == 1
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 130 and b"may still be charged" in err
    polls = len(nano.requests_to("transcribe/status"))
    _, out, _ = await voicebot("--config", str(config), "jobs")
    assert "cancelled" in out
    # The only process that polled has exited (its code checked above) and the job is recorded
    # cancelled, so no poll can follow: no sleep needed before counting.
    assert len(nano.requests_to("transcribe/status")) == polls  # nobody polls it any more


async def test_cli_progress_line_on_a_tty_only(tmp_path: Path, nano: FakeNanoGpt) -> None:
    nano.polls_to_complete = 2  # one pending poll shows "transcribing"; more only cost time
    config = write_config(tmp_path, nano_url=nano.url)
    audio = tmp_path / "talk.ogg"
    audio.write_bytes(make_tone(1.0))
    args = ("--config", str(config), "transcribe", str(audio), "--model", "Elevenlabs-STT")
    master, slave = pty.openpty()
    try:
        proc = await start(*args, stderr=slave)
        os.close(slave)
        chunks: list[bytes] = []
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, master, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        os.close(master)
    assert proc.returncode == 0
    shown = b"".join(chunks).decode()
    assert "\r\x1b[K" in shown and "queued" in shown and "transcribing" in shown
    code, _, err = await voicebot(*args)  # a pipe, not a terminal: no progress line
    assert code == 0 and "\r" not in err and "transcribing" not in err


async def test_cli_config_after_command_version_and_help_everywhere(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    config = write_config(tmp_path, nano_url=nano.url)
    code, out, err = await voicebot("jobs", "--config", str(config))
    assert code == 0, err
    code, out, _ = await voicebot("--version")
    assert code == 0 and out.startswith("voicebot 0.")
    code, out, _ = await voicebot("--help")
    assert "exit codes" in out and "130" in out
    parsers: list[tuple[str, argparse.ArgumentParser]] = [("voicebot", _parser())]
    for name, command in parsers:  # grows as nested commands (db copy) are found
        for action in command._actions:
            assert action.help, f"{name}: {action.dest} has no help text"
            if isinstance(action, argparse._SubParsersAction):
                parsers += [(f"{name} {n}", p) for n, p in action.choices.items()]
    assert {"voicebot db", "voicebot db copy", "voicebot transcribe"} <= {n for n, _ in parsers}


async def test_cli_jobs_and_status_need_no_provider_key(tmp_path: Path) -> None:
    env = subprocess_env(VOICEBOT_DB=str(tmp_path / "x.sqlite3"))
    example = str(ROOT / "config.example.yaml")
    code, out, err = await voicebot("jobs", "--config", example, env=env)
    assert code == 0, err
    assert "no jobs yet" in out
    code, _, err = await voicebot("status", "abc", "--config", example, env=env)
    assert code == 1 and "no job 'abc'" in err


async def test_cli_non_audio_gets_the_chat_sentence(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = tmp_path / "notes.ogg"
    text.write_text("shopping list\n" * 40)
    code, _, err = await voicebot("--config", str(config), "transcribe", str(text))
    assert code == 1
    assert err.strip() == (
        "voicebot: transcribe: This file isn't audio I can read (it looks like text)."
    )


async def test_cli_check_config_token_shapes_and_model_names(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        telegram={"token": "notatoken"},
        discord={"token": "also-not"},
        stt={"model": "whisper-large-v3"},
        tts={"model": "kokoro-82M"},
    )
    code, out, err = await voicebot("--config", str(config), "check-config")
    assert code == 2 and out == ""
    assert "telegram.token: does not look like a bot token" in err
    assert "check TELEGRAM_BOT_TOKEN" in err and "check DISCORD_BOT_TOKEN" in err
    assert "stt.model: unknown model 'whisper-large-v3'; did you mean 'Whisper-Large-V3'?" in err
    assert "did you mean 'Kokoro-82m'?" in err
    good = write_config(tmp_path, telegram={"token": TG_TOKEN}, discord={"token": DC_TOKEN})
    code, out, err = await voicebot("check-config", "--config", str(good))
    assert code == 0, err
    assert "telegram: on" in out and "discord: on" in out
    assert TG_TOKEN not in out + err


async def test_cli_run_without_chat_platform_exits_2_naming_env_vars(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    code, _, err = await voicebot("--config", str(config), "run")
    assert code == 2
    assert "TELEGRAM_BOT_TOKEN" in err and "DISCORD_BOT_TOKEN" in err and "Traceback" not in err


@pytest.mark.parametrize("seconds", [15, 60, 150])
def test_replies_deadline_states_the_real_duration(seconds: int) -> None:
    from bot.chat.replies import deadline_text
    from bot.text import ENGLISH

    expected = {15: "15 seconds", 60: "1 minute", 150: "2 minutes 30 seconds"}[seconds]
    assert ENGLISH.render(deadline_text(seconds)) == (
        f"The speech service did not finish within {expected}, so the job was stopped."
    )
