"""The ``shutdown:`` section: the drain's grace, 20 s unless set, never negative."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model.errors import ConfigError
from testkit.support import make_config


def test_config_shutdown_grace_defaults_to_20_and_takes_0(tmp_path: Path) -> None:
    assert make_config(tmp_path).shutdown.grace_seconds == 20.0
    assert make_config(tmp_path, shutdown={"grace_seconds": 0}).shutdown.grace_seconds == 0.0
    assert make_config(tmp_path, shutdown={"grace_seconds": 7.5}).shutdown.grace_seconds == 7.5


@pytest.mark.parametrize("value", [-1, "soon"])
def test_config_shutdown_grace_refuses_a_negative_or_non_number(
    tmp_path: Path, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, shutdown={"grace_seconds": value})
    assert any(p.startswith("shutdown.grace_seconds:") for p in caught.value.problems)


def test_config_shutdown_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, shutdown={"grace": 5})
    assert any("shutdown.grace" in p for p in caught.value.problems)
