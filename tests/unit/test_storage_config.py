"""Storage and sharding settings: PostgreSQL by URL or environment, SQLite by path or URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import config_readers
from adapters.discord.config import discord_config
from bot.app.core import config_secrets
from bot.config.load import ConfigError, parse_config
from testkit.support import config_dict


def test_storage_config_url_from_environment_wins(tmp_path: Path) -> None:
    data = config_dict(tmp_path, storage={"url": "postgresql://a@h/one"})
    assert parse_config(data, env={}).storage.target == "postgresql://a@h/one"
    env = {"VOICEBOT_DATABASE_URL": "postgresql://b:pw123456@h/two"}
    config = parse_config(data, env=env)
    assert config.storage.target == "postgresql://b:pw123456@h/two"
    assert "pw123456" in config_secrets(config)  # masked in logs


def test_storage_config_sqlite_by_path_or_url(tmp_path: Path) -> None:
    plain = parse_config(config_dict(tmp_path), env={}, base_dir=tmp_path)
    assert plain.storage.url is None and plain.storage.target.endswith("voicebot.sqlite3")
    data = config_dict(tmp_path, storage={"url": "sqlite:///data/x.sqlite3"})
    by_url = parse_config(data, env={}, base_dir=tmp_path)
    assert by_url.storage.url is None and by_url.storage.path == tmp_path / "data" / "x.sqlite3"


def test_storage_config_rejects_other_urls(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_dict(tmp_path, storage={"url": "mysql://x"}), env={})
    assert any("storage.url" in p for p in err.value.problems)


def test_storage_config_discord_shards(tmp_path: Path) -> None:
    data = config_dict(tmp_path, discord={"shard_count": 4, "shard_ids": [1, 3]})
    ok = discord_config(parse_config(data, env={}, platforms=config_readers()))
    assert (ok.shard_count, ok.shard_ids) == (4, (1, 3))
    with pytest.raises(ConfigError) as err:
        data = config_dict(tmp_path, discord={"shard_count": 2, "shard_ids": [2]})
        parse_config(data, env={}, platforms=config_readers())
    assert any("shard_ids" in p for p in err.value.problems)
