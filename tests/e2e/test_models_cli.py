"""The offline first run as a person at a shell goes through it: ``voicebot models`` and
``models fetch`` (hub unreachable, voice fetched), ``check-config`` and ``run`` saying a model is
missing, a missing model path refused, ``speak --voice PATH``, and no "operator has been told"."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.fakes.telegram import FakeTelegram
from testkit.fakes.voices import FakeVoiceHost
from testkit.local_engines import VOICE, joe_voice_path, need, tiny_en_path
from testkit.process import start_voicebot_run, subprocess_env, voicebot
from testkit.support import config_dict
from testkit.synth import speechlike

CLOSED = "http://127.0.0.1:9"
"""The discard port: nothing listens, so a connection is refused at once."""


def keyless(tmp_path: Path, *, stt: str = "base", voice: str = VOICE, **local: Any) -> Path:
    """The example config's shape on a fresh machine: no key, empty model and voice folders."""
    data = config_dict(tmp_path)
    data["providers"] = {
        "nanogpt": {"api_key": "${NANOGPT_API_KEY}", "base_url": f"{CLOSED}/api"},
        "local": {
            "type": "local",
            "download_dir": str(tmp_path / "models"),
            "voices_dir": str(tmp_path / "voices"),
            "voice_source": CLOSED,
            **local,
        },
    }
    data["stt"] = {"provider": "nanogpt", "fallback": {"provider": "local", "model": stt}}
    data["tts"] = {"provider": "nanogpt", "fallback": {"provider": "local", "voice": voice}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def test_models_lists_what_is_needed_where_and_that_it_is_missing(tmp_path: Path) -> None:
    need("faster_whisper", "local")
    code, out, err = await voicebot("--config", str(keyless(tmp_path)), "models")
    assert code == 0, err
    assert out.splitlines() == [
        f"speech-to-text: Whisper model base: missing from {tmp_path / 'models'} "
        "(providers.local.download_dir, about 145 MB); 'voicebot models fetch' downloads it",
        f"text-to-speech: Piper voice {VOICE}: missing from {tmp_path / 'voices'} "
        "(providers.local.voices_dir); 'voicebot models fetch' downloads it",
    ]


@pytest.mark.parametrize("hub", ["closed_port", "hf_hub_offline"])
async def test_models_fetch_with_no_hub_says_in_one_line_each_how_to_place_it(
    tmp_path: Path, hub: str
) -> None:
    need("faster_whisper", "local")
    env = {"HF_ENDPOINT": CLOSED, "HF_HUB_OFFLINE": "0"} if hub == "closed_port" else {}
    started = time.monotonic()
    code, out, err = await voicebot(
        "--config", str(keyless(tmp_path)), "models", "fetch", env=subprocess_env(**env)
    )
    assert code == 1 and out == ""
    assert time.monotonic() - started < 30  # refused at once, never a hang
    stt, tts = err.splitlines()
    assert stt.startswith("voicebot: cannot download Whisper model base (")
    assert "CTranslate2 Whisper model directory (model.bin, config.json, tokenizer.json)" in stt
    assert stt.endswith("and set stt.fallback.model to its path")
    assert tts.startswith(f"voicebot: cannot download Piper voice {VOICE} (")
    assert tts.endswith(
        f"place {VOICE}.onnx with its {VOICE}.onnx.json beside it in {tmp_path / 'voices'} "
        "(providers.local.voices_dir), or set tts.fallback.voice to the path of a .onnx file"
    )
    assert "Traceback" not in err and not list((tmp_path / "voices").glob("*.onnx"))


async def test_models_fetch_downloads_the_missing_voice_then_lists_it_present(
    tmp_path: Path,
) -> None:
    onnx = joe_voice_path()
    files = (onnx.read_bytes(), onnx.with_name(onnx.name + ".json").read_bytes())
    async with FakeVoiceHost({VOICE: files}) as host:
        config = keyless(tmp_path, stt=str(tiny_en_path()), voice_source=host.url)
        code, out, err = await voicebot("--config", str(config), "models", "fetch")
    assert code == 0, err
    assert f"Piper voice {VOICE}: downloaded to {tmp_path / 'voices' / VOICE}.onnx" in out
    assert "Whisper model" in out and "already present" in out
    code, out, _ = await voicebot("--config", str(config), "models")
    assert f"Piper voice {VOICE}: present in {tmp_path / 'voices'}" in out
    assert len(host.requests) == 2


async def test_check_config_says_in_one_line_each_that_a_model_is_missing(tmp_path: Path) -> None:
    need("faster_whisper", "local")
    config = keyless(tmp_path, offline=True)
    code, out, err = await voicebot("--config", str(config), "check-config")
    assert code == 0, err
    notes = [line for line in out.splitlines() if "missing from" in line]
    assert len(notes) == 2
    assert notes[0].startswith("  note: speech-to-text: Whisper model base: missing from")
    assert notes[0].endswith("and set stt.fallback.model to its path")  # offline: by hand


async def test_check_config_refuses_a_model_path_that_does_not_exist(tmp_path: Path) -> None:
    config = keyless(tmp_path, stt=str(tmp_path / "whisper-base"))
    code, out, err = await voicebot("--config", str(config), "check-config")
    assert code == 2 and "configuration OK" not in out
    assert (
        f"stt.fallback.model: model directory '{tmp_path / 'whisper-base'}' does not exist" in err
    )


async def test_run_says_at_start_that_the_model_is_missing(tmp_path: Path) -> None:
    need("faster_whisper", "local")
    async with FakeTelegram() as tg:
        data = yaml.safe_load(keyless(tmp_path).read_text())
        data["telegram"] = {"token": tg.token, "api_base": tg.api_base}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        log = tmp_path / "bot.log"
        proc = await start_voicebot_run(config, log)
        try:
            await tg.wait_held(timeout=60)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 15)
    lines = [line for line in log.read_text().splitlines() if "missing from" in line]
    assert len(lines) == 2
    assert "speech-to-text: Whisper model base: missing from" in lines[0]
    assert "'voicebot models fetch' downloads it" in lines[0]


async def test_transcribe_with_the_model_missing_offline_speaks_to_the_operator(
    tmp_path: Path,
) -> None:
    need("faster_whisper", "local")
    note = tmp_path / "note.ogg"
    note.write_bytes(speechlike(2.0).data)
    config = keyless(tmp_path, offline=True)
    code, _, err = await voicebot("--config", str(config), "transcribe", str(note))
    assert code == 1
    assert "operator has been told" not in err
    assert "could not be loaded; the log above says why, and 'voicebot models' what is" in err
    assert "offline: true forbids downloading it" in err and "Traceback" not in err


async def test_speak_takes_a_voice_file_by_path(tmp_path: Path) -> None:
    voice = joe_voice_path()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "other.onnx").write_bytes(voice.read_bytes())
    (other / "other.onnx.json").write_bytes(voice.with_name(voice.name + ".json").read_bytes())
    config = keyless(tmp_path, stt=str(tiny_en_path()), voices_dir=str(voice.parent))
    out_file = tmp_path / "out.ogg"
    code, _, err = await voicebot(
        "--config", str(config), "speak", "Hello.", "-o", str(out_file), "--voice",
        str(other / "other.onnx"),
    )  # fmt: skip
    assert code == 0, err
    assert out_file.read_bytes().startswith(b"OggS")
    code, _, err = await voicebot(
        "--config", str(config), "speak", "Hello.", "-o", str(out_file), "--voice",
        str(other / "gone.onnx"),
    )  # fmt: skip
    assert code == 1 and f"--voice: voice file '{other / 'gone.onnx'}' does not exist" in err
