"""The live_transcripts switch: the config's default, a chat's setting over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chat.settings import ChatSettings, UserSettings, apply_setting
from bot.chat.views import Defaults, describe_settings
from bot.config.load import parse_config
from bot.model.errors import InputError
from bot.text import text_for
from testkit.support import config_dict


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("off", False), (None, True)])
def test_live_transcripts_config_key(tmp_path: Path, value: str | None, expected: bool) -> None:
    data = config_dict(tmp_path)
    if value is not None:
        data["stt"] = {**data.get("stt", {}), "live_transcripts": value}
    assert parse_config(data, env={}).stt.live_transcripts is expected


def test_live_transcripts_chat_setting_round_trips() -> None:
    off = apply_setting(ChatSettings(), "live_transcripts", "off")
    assert off.live is False and ChatSettings.from_dict(off.to_dict()) == off
    assert apply_setting(off, "live", "on").live is True
    assert ChatSettings().live is None  # the config decides
    with pytest.raises(InputError):
        apply_setting(off, "live", "sometimes")


def test_live_transcripts_shown_in_settings_with_whose_choice_it_is() -> None:
    tr = text_for("en")
    defaults = Defaults(language="auto", diarize=False, voice="alloy", live=False)
    shown = describe_settings(tr, ChatSettings(), UserSettings(), defaults, "en")
    assert "live: off (default)" in shown
    chat = apply_setting(ChatSettings(), "live", "on")
    assert "live: on (this chat)" in describe_settings(tr, chat, UserSettings(), defaults, "en")
