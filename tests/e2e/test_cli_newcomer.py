"""A newcomer's rough edges, as processes: a database the process may not open is one line, and
every exit code is the one ``--help`` documents."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
import yaml

from testkit.fakes.audio import make_tone
from testkit.fakes.telegram import FakeTelegram
from testkit.local_engines import joe_voice_path, local_config_dict, voice_note
from testkit.process import start_voicebot, voicebot
from testkit.support import until, write_config

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _without_dac_override() -> None:
    """In the child before exec: drop the capabilities that let root ignore file permissions.

    Tests run as root here, and root reads and writes any file; with these two capabilities out
    of the bounding set, the exec'd process (still uid 0) obeys the mode bits like the image's
    uid 10001 on a root-owned ``./data``. A non-root user needs nothing: it obeys them already.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM when not root: nothing to drop


async def unprivileged(*args: str) -> tuple[int, str, str]:
    """``python -m adapters.cli ARGS`` in a process that obeys file permissions."""
    return await voicebot(*args, preexec_fn=_without_dac_override)


async def require_permissions_obeyed(tmp_path: Path) -> None:
    """Skip when even a process without DAC override can write a folder of mode 0555 (a
    container that forbids dropping capabilities): the case could not be simulated."""
    closed = tmp_path / "probe-folder"
    closed.mkdir()
    closed.chmod(0o555)
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"open({str(closed / 'probe')!r}, 'w')",
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=_without_dac_override,
    )
    if await probe.wait() == 0:
        pytest.skip("file permissions cannot be simulated here (the process ignores them)")


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


async def test_cli_unwritable_database_folder_is_one_line_in_run_transcribe_and_jobs(
    tmp_path: Path, tg: FakeTelegram
) -> None:
    await require_permissions_obeyed(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)  # like a root-owned ./data mounted for the image's uid 10001
    config = write_config(
        tmp_path,
        storage={"path": str(data / "voicebot.sqlite3")},
        telegram={"token": tg.token, "api_base": tg.api_base},
    )
    audio = tmp_path / "note.ogg"
    audio.write_bytes(make_tone(1.0))
    expected = (
        f"voicebot: cannot open the database {data / 'voicebot.sqlite3'}: "
        f"no write permission on the folder {data} (owner uid {os.getuid()}, mode 0555; "
    )
    for command in (["run"], ["transcribe", str(audio)], ["jobs"]):
        code, out, err = await unprivileged("--config", str(config), *command)
        assert code == 1 and out == ""
        assert one_line(err).startswith(expected), (command, err)
    assert list(data.iterdir()) == []


async def test_cli_unreadable_database_file_names_the_missing_read_permission(
    tmp_path: Path,
) -> None:
    db = tmp_path / "voicebot.sqlite3"
    sqlite3.connect(db).close()
    db.chmod(0o200)
    await require_permissions_obeyed(tmp_path)
    config = write_config(tmp_path, storage={"path": str(db)})
    code, _, err = await unprivileged("--config", str(config), "jobs")
    assert code == 1
    assert one_line(err).startswith(
        f"voicebot: cannot open the database {db}: no read permission on the file {db} (owner uid"
    )


async def test_cli_database_under_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the database folder should be\n")
    config = write_config(tmp_path, storage={"path": str(blocker / "voicebot.sqlite3")})
    code, _, err = await voicebot("--config", str(config), "jobs")
    assert code == 1
    assert one_line(err) == (
        f"voicebot: cannot open the database {blocker / 'voicebot.sqlite3'}: "
        f"{blocker} is a file, not a folder"
    )


async def test_cli_usage_errors_exit_2_with_nothing_sent(tmp_path: Path) -> None:
    config = write_config(tmp_path, providers={"cantonese": {"api_key": "${NO_SUCH_KEY}"}})
    audio = tmp_path / "note.ogg"
    audio.write_bytes(make_tone(1.0))
    code, _, err = await voicebot(
        "--config", str(config), "transcribe", str(audio), "--provider", "bogus"
    )
    assert code == 2
    assert one_line(err).startswith("voicebot: transcribe: --provider bogus: no such provider")
    # A provider without its key is refused before a job exists: nothing was sent.
    code, _, err = await voicebot(
        "--config", str(config), "transcribe", str(audio), "--provider", "cantonese"
    )
    assert code == 2
    assert one_line(err) == (
        "voicebot: transcribe: providers.cantonese.api_key: missing (set NO_SUCH_KEY)"
    )
    code, out, _ = await voicebot("--config", str(config), "jobs")
    assert code == 0 and out.strip() == "no jobs yet"


async def test_cli_jobs_limit_below_one_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "voicebot.sqlite3"
    config = write_config(tmp_path)
    # One job in the database: "-n 0" used to answer "no jobs yet" regardless.
    code, _, err = await voicebot(
        "--config", str(config), "speak", "hello", "-o", str(tmp_path / "x.ogg"), "--give-up", "0"
    )
    assert code == 1 and db.exists(), err
    code, out, _ = await voicebot("--config", str(config), "jobs", "-n", "1")
    assert code == 0 and len(out.splitlines()) == 1
    for limit in ("0", "-3", "many"):
        code, out, err = await voicebot("--config", str(config), "jobs", "-n", limit)
        assert code == 2 and out == ""
        assert "argument -n/--limit" in err and "no jobs yet" not in out


def job_state(db: Path) -> str | None:
    """The state of the newest job in a running command's database (None before it exists)."""
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            row = conn.execute("SELECT state FROM jobs ORDER BY created_at DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError:
            return None
    return None if row is None else str(row[0])


async def test_cli_ctrl_c_on_a_local_transcription_exits_within_a_second_without_charges(
    tmp_path: Path,
) -> None:
    data = local_config_dict(tmp_path, voices_dir=str(joe_voice_path().parent))
    config = tmp_path / "local.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    note = tmp_path / "long.ogg"  # about a minute and a half: seconds of work for tiny.en
    note.write_bytes(await voice_note("The quick brown fox jumps over the lazy dog. " * 30))
    proc = await start_voicebot("--config", str(config), "transcribe", str(note))
    try:
        # Handed to the engine: its worker thread is loading the model or transcribing.
        await until(lambda: job_state(tmp_path / "voicebot.sqlite3") == "submitted", 60)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        took = time.monotonic() - began
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130 and out == b""
    assert took < 1.0, f"Ctrl-C took {took:.1f} s"
    assert one_line(err.decode()).endswith("(a local engine: nothing is charged)")
    assert b"charged" not in err.replace(b"nothing is charged", b"")
    assert job_state(tmp_path / "voicebot.sqlite3") == "cancelled"


async def test_cli_misspelled_local_model_exits_2_before_anything_runs(tmp_path: Path) -> None:
    data = local_config_dict(tmp_path, voices_dir=str(joe_voice_path().parent))
    config = tmp_path / "local.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    note = tmp_path / "note.ogg"
    note.write_bytes(make_tone(1.0))
    code, out, err = await voicebot(
        "--config", str(config), "transcribe", str(note), "--model", "tny"
    )
    assert code == 2 and out == ""
    assert one_line(err).startswith("voicebot: transcribe: providers.local: 'tny' is neither")
    assert job_state(tmp_path / "voicebot.sqlite3") is None  # no job: nothing was started
