"""Black-box CLI: what the model cannot do is refused with exit 2 before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.process import voicebot
from testkit.support import write_config


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        (
            ["--format", "srt"],
            "The transcription model Whisper-Large-V3 gives no timings, so it cannot make "
            "subtitles (SRT or VTT).\nvoicebot: use --format text or json",
        ),
        (["--format", "vtt"], "The transcription model Whisper-Large-V3 gives no timings"),
        (["--language", "germn"], "'germn' is not a language I know. Did you mean German (de)?"),
        (["--language", "klingon"], "The transcription model does not know Klingon (tlh)."),
        (["--diarize"], "The transcription model Whisper-Large-V3 cannot tell speakers apart."),
    ],
)
async def test_cli_transcribe_refuses_what_the_model_cannot_do_before_sending(
    tmp_path: Path, nano: FakeNanoGpt, options: list[str], sentence: str
) -> None:
    config = write_config(tmp_path, nano_url=nano.url)
    audio = tmp_path / "two-minutes.wav"
    audio.write_bytes(make_tone(120.0, "wav", rate=16000))  # over 3 MB: would be split
    code, out, err = await voicebot("--config", str(config), "transcribe", str(audio), *options)
    assert code == 2, err
    assert err.startswith(f"voicebot: transcribe: {sentence}"), err
    assert out == "" and "Traceback" not in err
    assert nano.requests == []
    code, out, _ = await voicebot("--config", str(config), "jobs")
    assert code == 0 and "stt" not in out  # no job was stored either


async def test_cli_transcribe_takes_a_language_name_and_subtitles_from_a_timed_model(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    config = write_config(tmp_path, nano_url=nano.url)
    audio = tmp_path / "note.ogg"
    audio.write_bytes(make_tone(2.0))
    args = ["--config", str(config), "transcribe", str(audio)]
    code, _, err = await voicebot(*args, "--language", "German", "--format", "json")
    assert code == 0, err
    sent = nano.requests_to("transcribe")
    assert len(sent) == 1 and sent[0].form.get("language") == "de"
    code, out, err = await voicebot(*args, "--model", "Elevenlabs-STT", "--format", "srt")
    assert code == 0, err
    assert "00:00:00,000 --> " in out


async def test_cli_speak_refuses_text_over_the_model_limit_before_sending(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    config = write_config(tmp_path, nano_url=nano.url)
    out_file = tmp_path / "long.ogg"
    code, _, err = await voicebot(
        "--config", str(config), "speak", "x" * 60_000, "-o", str(out_file)
    )
    assert code == 2, err
    assert "60,000 characters; the limit is 50,000" in err
    assert nano.requests == [] and not out_file.exists()
