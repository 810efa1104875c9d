"""Pure Discord conversions: attachments from payloads, voice payloads, tokens, error mapping."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from adapters.discord.convert import (
    TOKEN_LIFETIME,
    InteractionRef,
    bot_absent,
    delivery_error,
    escape,
    files_within,
    interaction_origin,
    is_audio,
    is_bot_absent,
    settings_key,
    token_dead,
    voice_message_form,
    voice_message_payload,
)
from bot.chat.replies import FileReply
from bot.model.speech import VoiceClip
from testkit.fakes.discord_world import make_waveform


def attachment(**fields: Any) -> discord.Attachment:
    """A real discord.Attachment from an Attachment payload (the state is only kept, not used)."""
    payload: dict[str, Any] = {
        "id": "1",
        "filename": "file.bin",
        "size": 10,
        "url": "http://127.0.0.1:9/a",
        "proxy_url": "http://127.0.0.1:9/a",
        **fields,
    }
    return discord.Attachment(data=payload, state=SimpleNamespace(http=None))  # type: ignore[arg-type]


def http_error(status: int, code: int, message: str = "x") -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="reason")
    return discord.HTTPException(response, {"code": code, "message": message})  # type: ignore[arg-type]


def test_discord_is_audio_accepts_voice_messages_and_audio_files() -> None:
    voice = attachment(
        filename="voice-message.ogg",
        content_type="audio/ogg",
        duration_secs=1.5,
        waveform=make_waveform(),
    )
    assert voice.is_voice_message() and is_audio(voice)
    assert is_audio(attachment(filename="talk.m4a"))
    assert is_audio(attachment(filename="x", content_type="audio/mpeg"))
    assert not is_audio(attachment(filename="cat.png", content_type="image/png"))


def test_discord_voice_message_payload_has_flag_metadata_and_no_content() -> None:
    clip = VoiceClip(b"OggS...", 2.345678, bytes(i % 256 for i in range(300)))
    payload = voice_message_payload(clip, reply_to=42)
    assert payload["flags"] == 8192 and "content" not in payload
    [meta] = payload["attachments"]
    assert meta["id"] == 0 and meta["filename"] == "voice-message.ogg"
    assert meta["duration_secs"] == pytest.approx(2.346)
    assert len(base64.b64decode(meta["waveform"], validate=True)) == 256
    assert payload["allowed_mentions"] == {"parse": []}
    assert payload["message_reference"] == {"message_id": "42", "fail_if_not_exists": False}
    form = voice_message_form(clip)
    assert json.loads(form[0]["value"])["flags"] == 8192
    assert form[1]["content_type"] == "audio/ogg" and form[1]["value"] == clip.ogg


def test_discord_voice_message_payload_never_has_an_empty_waveform() -> None:
    payload = voice_message_payload(VoiceClip(b"", 0.0, b""))
    meta = payload["attachments"][0]
    assert base64.b64decode(meta["waveform"]) and meta["duration_secs"] > 0


def test_discord_interaction_ref_expires_before_fifteen_minutes() -> None:
    ref = InteractionRef(1, "tok", 1000.0 + TOKEN_LIFETIME)
    assert ref.usable(1000.0)
    assert ref.usable(1000.0 + 14 * 60)
    assert not ref.usable(1000.0 + TOKEN_LIFETIME - 1)
    assert InteractionRef.from_extra({"interaction": ref.to_extra()}) == ref
    assert InteractionRef.from_extra({}) is None


def test_discord_settings_key_is_guild_wide_or_per_dm() -> None:
    assert settings_key(5, 7) == "guild:5"
    assert settings_key(None, 7) == "dm:7"


def test_discord_escape_defuses_markdown_and_mentions() -> None:
    text = escape("**bold** @everyone <@123> _x_")
    assert "@everyone" not in text and "\\*\\*bold\\*\\*" in text and "\\_x\\_" in text


def test_discord_files_within_keeps_what_fits() -> None:
    files = [FileReply("a.txt", b"x" * 8, "text/plain"), FileReply("a.srt", b"y" * 8, "x")]
    assert [f.filename for f in files_within(files, 10)] == ["a.txt"]
    assert len(files_within(files, 16)) == 2


def test_discord_delivery_error_mapping() -> None:
    forbidden = delivery_error(http_error(403, 50013))
    assert forbidden is not None and forbidden.permanent
    gone = delivery_error(http_error(404, 10003))
    assert gone is not None and gone.permanent
    assert delivery_error(http_error(502, 0)) is None  # transient: the core retries
    assert token_dead(http_error(401, 50027))
    assert token_dead(http_error(404, 10015))
    assert not token_dead(http_error(403, 50013))


_USER = {"id": "5", "username": "u", "discriminator": "0", "global_name": None, "avatar": None}
_MEMBER = {
    "user": _USER,
    "roles": [],
    "joined_at": "2024-01-01T00:00:00+00:00",
    "permissions": "0",
    "flags": 0,
}


def interaction(context: int, owners: dict[str, str], guild_id: str | None) -> discord.Interaction:
    """A real discord.Interaction from an INTERACTION_CREATE payload (Discord's shapes: context
    0 guild, 1 the bot's DM, 2 other DMs; owners "0" installing guild ("0" in the bot's DM),
    "1" installing user)."""
    channel: dict[str, Any] = {"id": "77", "type": 0 if guild_id else 1}
    payload: dict[str, Any] = {
        "id": "9",
        "application_id": "1",
        "type": 2,
        "token": "t",
        "version": 1,
        "channel_id": "77",
        "channel": channel,
        "locale": "en-US",
        "app_permissions": "0",
        "attachment_size_limit": 10,
        "entitlements": [],
        "context": context,
        "authorizing_integration_owners": owners,
        "data": {"id": "3", "name": "status", "type": 1},
    }
    if guild_id:
        payload.update(guild_id=guild_id, member=_MEMBER)
        channel.update(guild_id=guild_id, name="elsewhere", position=0, permission_overwrites=[])
    else:
        payload["user"] = _USER
    state = discord.Client(intents=discord.Intents.none())._connection
    state.user = discord.ClientUser(state=state, data={**_USER, "id": "1", "bot": True})
    return discord.Interaction(data=payload, state=state)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("context", "owners", "guild_id", "absent"),
    [
        (0, {"0": "400"}, "400", False),  # the server installed the app
        (0, {"0": "400", "1": "5"}, "400", False),  # both: the server's install counts
        (0, {"1": "5"}, "400", True),  # a server that never invited the bot
        (1, {"0": "0", "1": "5"}, None, False),  # the bot's own DM
        (2, {"1": "5"}, None, True),  # a DM between other people
    ],
)
def test_discord_bot_absent_reads_the_installs_behind_an_interaction(
    context: int, owners: dict[str, str], guild_id: str | None, absent: bool
) -> None:
    found = interaction(context, owners, guild_id)
    assert bot_absent(found) is absent
    origin = interaction_origin(found, ephemeral=absent)
    assert is_bot_absent(origin) is absent
    assert bool(origin.extra.get("ephemeral")) is absent
