"""Platform adapters (Telegram, Discord): the only place platform types live.

Each platform is a plugin package exporting ``PLATFORM`` (:class:`adapters.plugin.Platform`);
its chat library is imported only when the platform is configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.plugin import Platform
from bot.config.load import Config, PlatformReader, load_config

if TYPE_CHECKING:
    from bot.app.core import ChatAdapter, Core

# name → the package that declares it; the order is the order of start-up and of messages.
PLUGINS: dict[str, str] = {"telegram": "adapters.telegram", "discord": "adapters.discord"}


def platforms() -> list[Platform]:
    """Every known platform plugin (cheap: no chat library is imported)."""
    found = []
    for name, package in PLUGINS.items():
        plugin: Platform = importlib.import_module(package).PLATFORM
        assert plugin.name == name, f"{package} declares {plugin.name!r}, registered as {name!r}"
        found.append(plugin)
    return found


def config_readers() -> Mapping[str, PlatformReader]:
    """The platforms' config section readers, for :func:`bot.config.load.parse_config`."""
    return {p.name: p.read_config for p in platforms()}


def load_platform_config(
    path: Path, env: Mapping[str, str] | None = None, *, require_keys: bool = True
) -> Config:
    """:func:`bot.config.load.load_config` with every known platform's section."""
    return load_config(path, env, require_keys=require_keys, platforms=config_readers())


def enabled(config: Config) -> list[Platform]:
    """The platforms with a token: the ones ``voicebot run`` starts."""
    return [p for p in platforms() if (s := config.platforms.get(p.name)) and s.token]


def configured_adapters(core: Core) -> list[ChatAdapter]:
    """One adapter per platform that has a token; each library is imported only when used."""
    return [p.build(core) for p in enabled(core.config)]
