"""The issue's example config (groq + keyless homelab, both ``type: openai``) end to end: the
``voicebot`` CLI, and ``voicebot run`` with Telegram and Discord, against the fake servers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.fakes.audio import decode_info, make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.openai import FakeOpenAi
from testkit.fakes.telegram import Call, FakeTelegram
from testkit.process import ROOT, subprocess_env
from testkit.support import config_dict

pytestmark = pytest.mark.timeout(90)

GROQ_KEY = "gsk_test_groq_key_123456"
USER = 42


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FakeOpenAi, FakeOpenAi]]:
    """``groq`` wants a key; ``homelab`` (a self-hosted server) wants none."""
    async with FakeOpenAi(api_key=GROQ_KEY) as groq, FakeOpenAi(api_key=None) as homelab:
        yield groq, homelab


def example_config(
    tmp_path: Path,
    groq: FakeOpenAi,
    homelab: FakeOpenAi,
    homelab_extra: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> Path:
    """The issue's example, pointed at the fakes (the key comes from the environment)."""
    data = config_dict(tmp_path, **sections)
    data["providers"] = {
        "nanogpt": {"api_key": "${NANOGPT_API_KEY}"},
        "groq": {
            "type": "openai",
            "base_url": groq.url,
            "api_key": "${GROQ_API_KEY}",
            "timeout": 2,
        },
        "homelab": {"type": "openai", "base_url": homelab.url, **(homelab_extra or {})},
    }
    data["stt"] = {"provider": "groq", "model": "whisper-large-v3-turbo"}
    data["tts"] = {"provider": "homelab", "model": "kokoro", "voice": "af_bella"}
    data["jobs"] = {"deadline_seconds": 600, "max_poll_interval": 1}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def env() -> dict[str, str]:
    return subprocess_env(GROQ_API_KEY=GROQ_KEY)


async def voicebot(config: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        "--config",
        str(config),
        *args,
        cwd=ROOT,
        env=env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_openai_e2e_cli_transcribe_speak_and_check_config(
    tmp_path: Path, servers: tuple[FakeOpenAi, FakeOpenAi]
) -> None:
    groq, homelab = servers
    config = example_config(tmp_path, groq, homelab)
    audio = tmp_path / "note.ogg"
    audio.write_bytes(make_tone(2.0))

    code, out, err = await voicebot(config, "transcribe", str(audio), "--format", "srt")
    assert code == 0, err
    assert out.startswith("1\n00:00:00,000 --> ") and "Hello there." in out
    [sent] = groq.requests_to("transcriptions")
    assert sent.headers["Authorization"] == f"Bearer {GROQ_KEY}"
    assert sent.form["model"] == "whisper-large-v3-turbo"

    code, out, err = await voicebot(config, "speak", "Hello from the homelab.", "-o", "hi.ogg")
    assert code == 0, err
    assert decode_info((ROOT / "hi.ogg").read_bytes())[:2] == ("ogg", "opus")
    (ROOT / "hi.ogg").unlink()
    [spoken] = homelab.requests_to("speech")
    assert spoken.json["input"] == "Hello from the homelab." and spoken.json["model"] == "kokoro"
    assert "Authorization" not in spoken.headers

    code, out, err = await voicebot(config, "transcribe", str(audio), "--provider", "homelab")
    assert code == 0 and out.strip() == "Hello there. Hi, how are you?", err
    code, _, err = await voicebot(config, "transcribe", str(audio), "--provider", "whisperx")
    assert code == 2 and "configured: cantonese, groq, homelab, nanogpt" in err

    code, out, _ = await voicebot(config, "transcribe", "--help")
    assert code == 0 and "(cantonese, groq, homelab, nanogpt)" in " ".join(out.split())

    code, out, err = await voicebot(config, "check-config")
    assert code == 0, err
    assert f"groq: type openai, 127.0.0.1:{groq.url.split(':')[2].split('/')[0]}" in out
    assert "; speech-to-text" in out and "no API key; text-to-speech" in out
    assert GROQ_KEY not in out + err


async def test_openai_e2e_cli_long_text_is_spoken_in_sentence_parts_joined_into_one_voice(
    tmp_path: Path, servers: tuple[FakeOpenAi, FakeOpenAi]
) -> None:
    groq, homelab = servers
    extra = {"max_chars": 40, "voices": ["af_bella", "am_adam"]}
    config = example_config(tmp_path, groq, homelab, homelab_extra=extra)
    code, _, err = await voicebot(config, "speak", "Hi.", "-o", "x.ogg", "--voice", "bogus")
    assert code == 2 and "no voice 'bogus' here. /voices lists them all." in err
    assert homelab.requests == []  # refused before anything was sent
    text = "The first sentence is here. A second one follows it! And a third? Yes, the end."
    out_file = tmp_path / "long.ogg"
    code, _, err = await voicebot(config, "speak", text, "-o", str(out_file))
    assert code == 0, err
    inputs = [r.json["input"] for r in homelab.requests_to("speech")]
    assert inputs == [
        "The first sentence is here.",
        "A second one follows it! And a third?",
        "Yes, the end.",
    ]
    fmt, codec, seconds, *_ = decode_info(out_file.read_bytes())
    # One voice message as long as the three parts the fake synthesized (0.3 s + len/60 each).
    assert (fmt, codec) == ("ogg", "opus")
    assert seconds == pytest.approx(sum(0.3 + len(i) / 60 for i in inputs), abs=0.15)


async def test_openai_e2e_cli_audio_over_the_instance_limit_is_reencoded_to_fit(
    tmp_path: Path, servers: tuple[FakeOpenAi, FakeOpenAi]
) -> None:
    groq, homelab = servers
    config = example_config(tmp_path, groq, homelab, homelab_extra={"max_upload_bytes": 100_000})
    wav = tmp_path / "long.wav"
    wav.write_bytes(make_tone(6.0, "wav"))
    assert wav.stat().st_size > 100_000
    code, out, err = await voicebot(config, "transcribe", str(wav), "--provider", "homelab")
    assert code == 0 and "Hello there." in out, err
    [sent] = homelab.requests_to("transcriptions")
    upload = sent.files["file"]
    assert len(upload.data) <= 100_000 and upload.filename.endswith((".ogg", ".webm"))
    assert decode_info(upload.data)[2] == pytest.approx(6.0, abs=0.1)


async def test_openai_e2e_cli_srt_from_a_server_without_verbose_json_says_why(
    tmp_path: Path,
) -> None:
    async with (
        FakeOpenAi(api_key=GROQ_KEY, refuse_verbose=True) as groq,
        FakeOpenAi(api_key=None) as homelab,
    ):
        config = example_config(tmp_path, groq, homelab)
        audio = tmp_path / "note.ogg"
        audio.write_bytes(make_tone(1.0))
        code, _, err = await voicebot(config, "transcribe", str(audio), "--format", "srt")
        assert code == 1 and "no timings" in err and "Traceback" not in err
        code, out, err = await voicebot(config, "transcribe", str(audio))
        assert code == 0 and "Hello there." in out, err


async def test_openai_e2e_cli_bad_servers_give_specific_messages(
    tmp_path: Path, servers: tuple[FakeOpenAi, FakeOpenAi]
) -> None:
    groq, homelab = servers
    config = example_config(tmp_path, groq, homelab)
    audio = tmp_path / "note.ogg"
    audio.write_bytes(make_tone(1.0))
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}), "key"),
        ((200, "<!doctype html><p>router login</p>"), "not a valid reply"),
        ((404, "<html>404</html>"), "address is wrong"),
        ((200, {"text": "too late"}, 5.0), "did not answer in time"),
    ]
    for (status, body, *delay), needle in cases:
        groq.push("transcriptions", status, body, delay=delay[0] if delay else 0.0)
        code, _, err = await voicebot(config, "transcribe", str(audio))
        assert code == 1 and needle in err and "Traceback" not in err, err
    groq.stt_models.discard("whisper-large-v3-turbo")
    code, _, err = await voicebot(config, "transcribe", str(audio))
    assert code == 1 and "does not know the model 'whisper-large-v3-turbo'" in err


# -- voicebot run: Telegram and Discord --------------------------------------------------------


def replies_to(message: dict[str, Any], method: str = "sendMessage") -> Any:
    def match(call: Call) -> bool:
        reply = call.params.get("reply_parameters") or {}
        return call.method == method and reply.get("message_id") == message["message_id"]

    return match


async def test_openai_e2e_run_serves_telegram_and_discord(
    tmp_path: Path, servers: tuple[FakeOpenAi, FakeOpenAi]
) -> None:
    groq, homelab = servers
    async with FakeTelegram() as tg, FakeDiscord() as dc:
        discord = {
            "token": dc.token,
            "api_base": dc.api_base,
            "gateway_url": dc.gateway_url,
            "message_content": True,
            "ready_timeout": 20,
        }
        telegram = {"token": tg.token, "api_base": tg.api_base}
        config = example_config(tmp_path, groq, homelab, telegram=telegram, discord=discord)
        log = tmp_path / "bot.log"
        proc = await start_voicebot_run_with_key(config, log)
        try:
            await _telegram_round_trip(tg, groq, homelab)
            await _discord_round_trip(dc, groq, homelab)
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)
        text = log.read_text(errors="replace")
        assert "Traceback" not in text and GROQ_KEY not in text


async def start_voicebot_run_with_key(config: Path, log: Path) -> asyncio.subprocess.Process:
    """``voicebot run`` like conftest's ``start_voicebot_run``, with GROQ_API_KEY set."""
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.cli",
            "--config",
            str(config),
            "run",
            cwd=ROOT,
            env=env(),
            stdout=sink,
            stderr=sink,
        )


async def _telegram_round_trip(tg: FakeTelegram, groq: FakeOpenAi, homelab: FakeOpenAi) -> None:
    await tg.wait_held(timeout=30)
    voice = tg.send_voice(USER, USER, make_tone(2.0), duration=2)
    placeholder = await tg.wait_for(replies_to(voice), timeout=30)
    assert placeholder.message is not None
    edit = await tg.wait_for(
        lambda c: (
            c.method == "editMessageText"
            and c.params.get("message_id") == placeholder.message["message_id"]  # type: ignore[index]
            and "Hello there." in (c.text or "")
        ),
        timeout=30,
    )
    assert edit.text is not None and "Hi, how are you?" in edit.text
    assert groq.submits["transcriptions"] == 1
    # Telegram's OGG/Opus goes up as it is.
    assert groq.requests_to("transcriptions")[0].files["file"].filename.endswith(".ogg")
    # A server answering garbage: a specific sentence, and the bot keeps serving.
    homelab.push("speech", 200, "<html>oops</html>", {"Content-Type": "text/html"})
    asked = tg.send_text(USER, USER, "/speak This will fail.")
    failed = await tg.wait_for(
        lambda c: (
            c.method in ("sendMessage", "editMessageText") and "not a valid reply" in (c.text or "")
        ),
        timeout=30,
    )
    assert failed.chat_id == USER
    asked = tg.send_text(USER, USER, "/speak Hello from the homelab.")
    sent = await tg.wait_for(replies_to(asked, "sendVoice"), timeout=30)
    assert sent.upload is not None and decode_info(sent.upload.data)[:2] == ("ogg", "opus")
    assert homelab.requests_to("speech")[-1].json["input"] == "Hello from the homelab."


async def _discord_round_trip(dc: FakeDiscord, groq: FakeOpenAi, homelab: FakeOpenAi) -> None:
    await dc.wait_for(lambda: dc.commands.get(None), timeout=30)
    await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, make_tone(1.0), 1.0)
    await dc.wait_for(
        lambda: [m for m in dc.bot_messages() if "Hi, how are you?" in m["content"]], timeout=30
    )
    assert groq.submits["transcriptions"] == 2
    before = homelab.submits["speech"]
    payload = await dc.send_slash("speak", {"text": "Hello Discord"})
    request = await dc.wait_for_request(
        "POST",
        rf"/channels/{dc.ids.text_channel}/messages",
        where=lambda r: r.status == 200 and (r.json or {}).get("flags") == 8192,
    )
    # A native voice message whose audio came from the homelab server.
    assert decode_info(request.part("files[0]").data)[:2] == ("ogg", "opus")
    record = dc.interaction(payload)
    await dc.wait_for(
        lambda: record.original and "Voice message posted" in record.original["content"]
    )
    assert homelab.submits["speech"] == before + 1
