"""Config loading: env expansion, every problem at once with its key path, sane defaults."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adapters import config_readers, load_platform_config
from bot.config.load import expand_env, load_config, parse_config
from bot.model.errors import ConfigError
from testkit.support import config_dict

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def test_expand_env_variables_and_defaults() -> None:
    text, missing = expand_env("a=${A} b=${B:-dflt} c=${C}", {"A": "1"})
    assert text == "a=1 b=dflt c="
    assert missing == ["C"]


def test_example_config_loads_with_env_and_documents_every_key() -> None:
    env = {"NANOGPT_API_KEY": "k1", "TELEGRAM_BOT_TOKEN": "123:abc"}
    config = load_platform_config(EXAMPLE, env)
    assert config.providers["nanogpt"].api_key == "k1"
    assert config.providers["nanogpt"].base_url == "https://nano-gpt.com/api"
    assert config.providers["cantonese"].api_key is None
    assert config.platforms["telegram"].token == "123:abc"
    assert config.platforms["discord"].token is None
    assert config.stt.model == "Whisper-Large-V3"
    assert config.tts.voice == "af_bella"
    assert config.storage.path.is_absolute()
    # every key in the example carries a comment line above it or on its section
    lines = EXAMPLE.read_text().splitlines()
    keys = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    undocumented = [
        lines[i]
        for i in keys
        if not lines[i].rstrip().endswith(":") and not lines[i - 1].lstrip().startswith("#")
    ]
    assert undocumented == []


def test_missing_key_names_the_variable_to_set(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["providers"]["nanogpt"]["api_key"] = "${NANOGPT_API_KEY}"
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    assert any(
        p.startswith("providers.nanogpt.api_key: missing (set NANOGPT_API_KEY)")
        for p in info.value.problems
    )


def test_example_config_without_keys_falls_back_to_the_local_engine() -> None:
    pytest.importorskip("faster_whisper", reason="the local extra is not installed")
    config = load_platform_config(EXAMPLE, {})
    assert (config.stt.provider, config.stt.model) == ("local", "base")
    assert config.stt.note is not None
    assert config.stt.note.startswith("stt: local `base` (offline on this machine")
    assert config.stt.note.endswith("set NANOGPT_API_KEY to use nanogpt")
    assert config.tts.provider == "local" and config.tts.voice == "en_US-joe-medium"
    if importlib.util.find_spec("piper") is not None:  # the voice is fetched on first use
        assert config.tts.note is not None
        assert config.tts.note.startswith("tts: local `en_US-joe-medium` (offline"), config.tts.note


def test_unused_provider_without_key_is_fine(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["providers"]["cantonese"]["api_key"] = "${NOPE}"
    config = parse_config(data, env={})
    assert config.providers["cantonese"].api_key is None


def test_every_problem_reported_at_once_with_key_paths(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["stt"]["provider"] = "whisperx"
    data["stt"]["diarize"] = "maybe"
    data["jobs"]["concurrency"] = "many"
    data["jobs"]["deadline_seconds"] = -5
    data["telegram"] = {"tokn": "x"}
    data["discord"] = {"guild_ids": ["abc"]}
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={}, platforms=config_readers())
    problems = "\n".join(info.value.problems)
    assert (
        "stt.provider: 'whisperx' is not an instance in providers: (configured: cantonese, nanogpt)"
        in problems
    )
    assert "stt.diarize: expected bool, got 'maybe'" in problems
    assert "jobs.concurrency: expected int, got 'many'" in problems
    assert "jobs.deadline_seconds: must be greater than 0" in problems
    assert "telegram.tokn: unknown key" in problems
    assert "discord.guild_ids: expected a list of numeric ids" in problems


def test_wrong_section_type_is_reported(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["stt"] = ["not", "a", "mapping"]
    with pytest.raises(ConfigError, match="stt: expected a mapping, got list"):
        parse_config(data, env={})


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage: {path: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The parser only notices the unclosed [ at the next key: both lines are named.
        (
            "stt:\n  model: [a, b\ntts:\n  voice: x\n",
            "at line 3, column 4: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence that starts at line 2, column 10)",
        ),
        (
            "a: 1\n\tb: 2\n",
            "at line 2, column 1: found character '\\t' that cannot start any token",
        ),
        ("a: 1\n b: 2\n", "at line 2, column 3: mapping values are not allowed here"),
    ],
)
def test_bad_yaml_names_pyyaml_line_column_and_reason(
    tmp_path: Path, text: str, expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert caught.value.problems[0].startswith(f"{bad}: not valid YAML {expected}")


def test_relative_db_path_is_relative_to_config_file(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["storage"]["path"] = "data/bot.sqlite3"
    path = tmp_path / "conf" / "c.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    assert load_config(path, {}).storage.path == tmp_path / "conf" / "data" / "bot.sqlite3"


def test_config_platform_sections_belong_to_their_plugins(tmp_path: Path) -> None:
    data = config_dict(tmp_path, telegram={"token": "1:x"}, slack={"token": "y"})
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={}, platforms=config_readers())
    assert info.value.problems == ["slack: unknown key"]
    del data["slack"]
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})  # the core alone knows no platform
    assert info.value.problems == ["telegram: unknown key"]
    config = parse_config(data, env={}, platforms=config_readers())
    assert config.platforms["telegram"].token == "1:x"
    assert config.platforms["discord"].token is None


def test_config_platform_plugins_read_config_without_their_libraries() -> None:
    code = (
        "import sys\n"
        "from adapters import config_readers, platforms\n"
        "from adapters.cli import main\n"
        "assert [p.name for p in platforms()] == ['telegram', 'discord'], platforms()\n"
        "assert set(config_readers()) == {'telegram', 'discord'}\n"
        "loaded = sorted(m for m in ('telegram', 'discord') if m in sys.modules)\n"
        "assert loaded == [], loaded\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
