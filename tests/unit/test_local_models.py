"""The offline first run, without engines: where a local model or voice is looked for, whether it
is there, what ``voicebot models`` says, paths as configuration errors, voice files, CLI wording."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from adapters.cli.models import (
    _Bar,
    by_hand,
    describe,
    for_operator,
    needs,
    startup_notes,
    voice_file,
)
from bot.config.load import Config, parse_config
from bot.model.errors import BotError, ConfigError
from bot.providers.base import TtsCapabilities
from bot.providers.local.presence import voice_presence, whisper_presence
from bot.providers.local.settings import PiperSettings, WhisperSettings, looks_like_path
from testkit.support import config_dict

VOICE = "en_US-joe-medium"


def _voice_pair(folder: Path, name: str = VOICE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    onnx = folder / f"{name}.onnx"
    onnx.write_bytes(b"onnx")
    onnx.with_name(onnx.name + ".json").write_text('{"audio": {}}')
    return onnx


def _model_dir(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (folder / name).write_text("x")
    return folder


def _keyless(tmp_path: Path, stt: dict[str, Any], tts: dict[str, Any], **local: Any) -> Config:
    """The example config's shape: nanogpt without a key, falling back to a local instance."""
    data = config_dict(tmp_path)
    data["providers"]["nanogpt"] = {"api_key": "${NANOGPT_API_KEY}"}
    data["providers"]["local"] = {
        "type": "local",
        "download_dir": str(tmp_path / "models"),
        "voices_dir": str(tmp_path / "voices"),
        **local,
    }
    data["stt"] = {"provider": "nanogpt", "fallback": {"provider": "local", **stt}}
    data["tts"] = {"provider": "nanogpt", "fallback": {"provider": "local", **tts}}
    return parse_config(data, env={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("base", False),
        ("tiny.en", False),
        ("large-v3-turbo", False),
        (VOICE, False),
        ("models/base", True),
        ("/opt/whisper", True),
        ("~/voices/x.onnx", True),
        ("./here", True),
        ("joe.onnx", True),
    ],
)
def test_looks_like_path_tells_names_from_paths(value: str, expected: bool) -> None:
    assert looks_like_path(value) is expected


def test_fallback_model_path_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError) as info:
        _keyless(tmp_path, {"model": str(missing)}, {"voice": str(tmp_path / "nope.onnx")})
    problems = info.value.problems
    assert any(p.startswith(f"stt.fallback.model: model directory '{missing}'") for p in problems)
    assert f"tts.fallback.voice: voice file '{tmp_path / 'nope.onnx'}' does not exist" in problems


def test_fallback_names_and_existing_paths_are_no_config_error(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "whisper")
    voice = _voice_pair(tmp_path / "elsewhere", "mine")
    config = _keyless(tmp_path, {"model": str(model)}, {"voice": str(voice)})
    assert config.stt.model == str(model) and config.tts.voice == str(voice)
    assert _keyless(tmp_path, {"model": "base"}, {"voice": VOICE}).stt.model == "base"


def test_whisper_presence_of_a_size_looks_in_download_dir(tmp_path: Path) -> None:
    settings = WhisperSettings(download_dir=tmp_path / "models")
    found = whisper_presence("base", settings)
    assert (found.present, found.where, found.fetchable, found.size_mb) == (
        False,
        tmp_path / "models",
        True,
        145,
    )
    offline = whisper_presence("base", WhisperSettings(download_dir=tmp_path, offline=True))
    assert not offline.fetchable


def test_whisper_presence_of_a_directory_is_the_directory(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "whisper")
    found = whisper_presence(str(model), WhisperSettings())
    assert found.present and found.where == model and not found.fetchable
    assert not whisper_presence(str(tmp_path / "gone"), WhisperSettings()).present


def test_voice_presence_looks_in_voices_dir(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    missing = voice_presence(VOICE, PiperSettings(voices_dir=voices))
    assert (missing.present, missing.where, missing.fetchable) == (False, voices, True)
    assert not voice_presence(VOICE, PiperSettings(voices_dir=voices, offline=True)).fetchable
    _voice_pair(voices)
    assert voice_presence(VOICE, PiperSettings(voices_dir=voices)).present


def test_models_lists_what_the_fallback_routes_need_and_where(tmp_path: Path) -> None:
    config = _keyless(tmp_path, {"model": "base"}, {"voice": VOICE})
    stt, tts = needs(config)
    assert (stt.key, stt.dir_key, tts.key, tts.dir_key) == (
        "stt.fallback.model",
        "providers.local.download_dir",
        "tts.fallback.voice",
        "providers.local.voices_dir",
    )
    assert describe(stt) == (
        f"speech-to-text: Whisper model base: missing from {tmp_path / 'models'} "
        "(providers.local.download_dir, about 145 MB); 'voicebot models fetch' downloads it"
    )
    assert len(startup_notes(config)) == 2
    _voice_pair(tmp_path / "voices")
    (line,) = startup_notes(config)
    assert line.startswith("speech-to-text: Whisper model base: missing")
    assert describe(needs(config)[1]) == (
        f"text-to-speech: Piper voice {VOICE}: present in {tmp_path / 'voices'} "
        "(tts.fallback.voice)"
    )


def test_models_offline_says_how_to_place_each_by_hand(tmp_path: Path) -> None:
    config = _keyless(tmp_path, {"model": "base"}, {"voice": VOICE}, offline=True)
    stt, tts = needs(config)
    assert "model.bin, config.json, tokenizer.json" in by_hand(stt)
    assert by_hand(stt).endswith("set stt.fallback.model to its path")
    assert by_hand(tts) == (
        f"place {VOICE}.onnx with its {VOICE}.onnx.json beside it in {tmp_path / 'voices'} "
        "(providers.local.voices_dir), or set tts.fallback.voice to the path of a .onnx file"
    )
    assert "'voicebot models fetch'" not in describe(stt)


def test_models_needs_nothing_when_routes_are_hosted(tmp_path: Path) -> None:
    assert needs(parse_config(config_dict(tmp_path), env={})) == []


def test_tts_capabilities_take_a_voice_file_only_as_a_path() -> None:
    caps = TtsCapabilities(asynchronous=False, max_chars=100, voices=frozenset({VOICE}))
    files = TtsCapabilities(
        asynchronous=False, max_chars=100, voices=frozenset({VOICE}), voice_files=".onnx"
    )
    assert caps.has_voice(VOICE) and not caps.has_voice("/v/x.onnx")
    assert files.has_voice("/v/x.onnx") and files.has_voice("voices/x.onnx")
    # A chat's voice name has no "/": it cannot make the engine open a file of its choosing.
    assert not files.has_voice("x.onnx") and not files.has_voice("other")


def test_speak_voice_file_becomes_absolute_and_a_missing_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _voice_pair(tmp_path / "v", "mine")
    monkeypatch.chdir(tmp_path)
    assert voice_file("v/mine.onnx") == str(tmp_path / "v" / "mine.onnx")
    assert voice_file(VOICE) == VOICE and voice_file(None) is None
    with pytest.raises(BotError, match=r"voice file 'v/gone\.onnx' does not exist"):
        voice_file("v/gone.onnx")


def test_cli_sentences_address_the_operator_running_it() -> None:
    local = "The local speech model could not be loaded; the bot's operator has been told."
    assert for_operator(local) == (
        "The local speech model could not be loaded; the log above says why, "
        "and 'voicebot models' what is missing."
    )
    hosted = "The bot's speech service key was rejected; the operator has been told."
    assert for_operator(hosted) == (
        "The bot's speech service key was rejected; the log above says why."
    )
    assert for_operator("Nothing to say.") == "Nothing to say."
    fetch = "The local voice is not downloaded yet and fetching it failed; the bot's operator has "
    assert for_operator(fetch + "been told. Please try again later.") == (
        "The local voice is not downloaded yet and fetching it failed; the log above says why, "
        "and 'voicebot models' what is missing. Please try again later."
    )


def test_progress_bar_draws_one_line_and_ends_it() -> None:
    out = io.StringIO()
    bar = _Bar(out)
    bar.show("x.onnx", 5_000_000, 10_000_000)
    bar.show("x.onnx", 10_000_000, 10_000_000)
    bar.end()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("100 %\n") and "#" * 30 in text


def test_fetch_whisper_asks_the_hub_for_the_model_files_and_names_a_failure_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("faster_whisper")
    import huggingface_hub
    from faster_whisper.utils import disabled_tqdm

    from bot.providers.local.presence import HubUnreachable, fetch_whisper

    asked: list[tuple[str, dict[str, Any]]] = []

    def snapshot(repo: str, **kwargs: Any) -> str:
        asked.append((repo, kwargs))
        if len(asked) > 2:
            raise OSError("Got: ConnectError: refused\nAn error happened while trying ...")
        return str(tmp_path / "snap")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    assert fetch_whisper("base", tmp_path, progress=False) == tmp_path / "snap"
    fetch_whisper("base", tmp_path, progress=True)
    (repo, quiet), (_, shown) = asked
    assert repo == "Systran/faster-whisper-base" and quiet["cache_dir"] == str(tmp_path)
    assert "model.bin" in quiet["allow_patterns"] and "tokenizer.json" in quiet["allow_patterns"]
    assert quiet["tqdm_class"] is disabled_tqdm and shown["tqdm_class"] is None
    with pytest.raises(HubUnreachable, match=r"^ConnectError: refused$"):
        fetch_whisper("base", tmp_path, progress=False)
