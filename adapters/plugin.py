"""What a chat platform plugin declares: its name, its config section, how it builds itself."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app.core import ChatAdapter, Core
    from bot.config.load import PlatformSettings
    from bot.config.reader import Section


@dataclass(frozen=True, slots=True)
class Platform:
    """A chat platform as the rest of the program sees it before its library is imported."""

    name: str
    """The config section, the jobs' ``origin.platform``, the health report's key."""
    token_env: str
    """The variable the example config reads the token from (named when it is unset)."""
    read_config: Callable[[Section], PlatformSettings]
    """Validates the platform's config section, appending every problem to the section's list."""
    token_shape: re.Pattern[str]
    """What a real token looks like (shape only: a real check needs the network)."""
    token_hint: str
    """Where a real token comes from, for the sentence about one of the wrong shape."""
    adapter: str
    """``module:Class`` of the adapter, imported only when the platform is configured."""

    def token_problem(self, token: str | None) -> str | None:
        """A sentence when ``token`` is set but cannot be a real one."""
        if not token or self.token_shape.match(token):
            return None
        return (
            f"{self.name}.token: does not look like a bot token ({self.token_hint}); "
            f"check {self.token_env}"
        )

    def build(self, core: Core) -> ChatAdapter:
        """The adapter for ``core`` (this imports the platform's chat library)."""
        module, _, name = self.adapter.partition(":")
        factory: Callable[[Core], ChatAdapter] = getattr(importlib.import_module(module), name)
        return factory(core)
