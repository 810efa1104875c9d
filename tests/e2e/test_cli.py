"""Black-box CLI: ``python -m adapters.cli`` as a subprocess against the local provider fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.fakes.audio import decode_info, make_tone
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.process import ROOT, subprocess_env, voicebot
from testkit.support import NANO_KEY, write_config


async def test_cli_transcribe_prints_transcript(
    tmp_path: Path, nano_canto: tuple[FakeNanoGpt, FakeCantonese]
) -> None:
    nano, canto = nano_canto
    config = write_config(tmp_path, nano_url=nano.url, canto_url=canto.url)
    audio = tmp_path / "note.ogg"
    audio.write_bytes(make_tone(2.0))
    code, out, err = await voicebot("--config", str(config), "transcribe", str(audio))
    assert code == 0, err
    assert out.strip()
    assert nano.submits["transcribe"] == 1
    code, out, _ = await voicebot("--config", str(config), "jobs")
    assert code == 0 and "stt" in out and "done" in out
    job_id = out.split()[0]
    code, out, _ = await voicebot("--config", str(config), "status", job_id)
    assert code == 0 and f"Job {job_id}" in out


async def test_cli_transcribe_diarized_srt_and_json(
    tmp_path: Path, nano_canto: tuple[FakeNanoGpt, FakeCantonese]
) -> None:
    nano, canto = nano_canto
    config = write_config(tmp_path, nano_url=nano.url, canto_url=canto.url)
    nano.polls_to_complete = 2
    audio = tmp_path / "talk.mp3"
    audio.write_bytes(make_tone(3.0, "mp3"))
    args = ["--config", str(config), "transcribe", str(audio), "--model", "Elevenlabs-STT"]
    code, out, err = await voicebot(*args, "--diarize")
    assert code == 0, err
    assert "Speaker 1:" in out and "Speaker 2:" in out
    code, out, err = await voicebot(*args, "--format", "srt")
    assert code == 0, err
    assert "00:00:00,000 --> " in out
    code, out, err = await voicebot(*args, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["words"] and data["job"]


async def test_cli_speak_writes_ogg_opus(
    tmp_path: Path, nano_canto: tuple[FakeNanoGpt, FakeCantonese]
) -> None:
    nano, canto = nano_canto
    config = write_config(tmp_path, nano_url=nano.url, canto_url=canto.url)
    out_file = tmp_path / "hello.ogg"
    code, out, err = await voicebot("--config", str(config), "speak", "Hello!", "-o", str(out_file))
    assert code == 0, err
    fmt, codec, duration, rate, channels = decode_info(out_file.read_bytes())
    assert (fmt, codec, rate, channels) == ("ogg", "opus", 48000, 1)
    assert duration == pytest.approx(decode_info(nano.audio_bytes)[2], abs=0.06)
    assert "wrote" in out


async def test_cli_errors_are_one_clear_line(
    tmp_path: Path, nano_canto: tuple[FakeNanoGpt, FakeCantonese]
) -> None:
    nano, canto = nano_canto
    config = write_config(tmp_path, nano_url=nano.url, canto_url=canto.url)
    code, _, err = await voicebot("--config", str(config), "transcribe", str(tmp_path / "nope.ogg"))
    assert code == 1 and err.strip().startswith("voicebot: cannot read")
    bad = tmp_path / "bad.ogg"
    bad.write_text("not audio at all\n" * 20)
    code, _, err = await voicebot("--config", str(config), "transcribe", str(bad))
    assert code == 1 and "audio" in err and "Traceback" not in err
    nano.push("transcribe", 402, {"error": "Insufficient balance"})
    good = tmp_path / "good.ogg"
    good.write_bytes(make_tone(1.0))
    code, _, err = await voicebot("--config", str(config), "transcribe", str(good))
    assert code == 1 and "out of credit" in err and "Traceback" not in err
    assert NANO_KEY not in err


async def test_cli_config_problems_and_check_config(tmp_path: Path) -> None:
    code, _, err = await voicebot("--config", str(tmp_path / "missing.yaml"), "check-config")
    assert code == 2 and "file not found" in err
    example = ROOT / "config.example.yaml"
    env = subprocess_env()
    env.pop("NANOGPT_API_KEY", None)
    code, out, err = await voicebot("--config", str(example), "check-config", env=env)
    # No key: the example's routes fall back to the offline engine and say how to get NanoGPT.
    assert code == 0 and "Traceback" not in err
    assert "set NANOGPT_API_KEY to use nanogpt" in out
    env = subprocess_env(NANOGPT_API_KEY="k", VOICEBOT_DB=str(tmp_path / "x.sqlite3"))
    code, out, err = await voicebot("--config", str(example), "check-config", env=env)
    assert code == 0, err
    assert "configuration OK" in out and "telegram: off" in out
