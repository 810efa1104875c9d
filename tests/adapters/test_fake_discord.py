"""The fake Discord against the real discord.py: login, gateway, messages, interactions, faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from testkit.fakes.audio import make_tone
from testkit.fakes.discord import FakeDiscord, make_waveform

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("discord_as_default")]


@pytest.fixture
def discord_as_default(dc: FakeDiscord) -> Iterator[None]:
    """discord.py's REST base and gateway pointed at the fake ``dc`` (restored after): these
    tests build plain discord.py clients, which have no per-client base URL."""
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = dc.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(dc.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


@dataclass
class Bot:
    """A real discord.Client + CommandTree and what its handlers saw."""

    client: discord.Client
    tree: app_commands.CommandTree[discord.Client]
    inbox: asyncio.Queue[discord.Message] = field(default_factory=asyncio.Queue)
    seen: asyncio.Queue[object] = field(default_factory=asyncio.Queue)


def make_bot(*, message_content: bool = True, members: bool = False) -> Bot:
    """Build a client whose on_message feeds ``inbox`` (its own messages are skipped)."""
    intents = discord.Intents.default()
    intents.message_content = message_content
    intents.members = members
    client = discord.Client(intents=intents, guild_ready_timeout=0.05)
    bot = Bot(client, app_commands.CommandTree(client))

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author != client.user:
            bot.inbox.put_nowait(message)

    return bot


@contextlib.asynccontextmanager
async def running(bot: Bot, dc: FakeDiscord) -> AsyncIterator[Bot]:
    """login + connect as a task + wait_until_ready; close on exit."""
    await bot.client.login(dc.token)
    task = asyncio.create_task(bot.client.connect())
    try:
        await asyncio.wait_for(bot.client.wait_until_ready(), 5)
        yield bot
    finally:
        await bot.client.close()
        await asyncio.wait_for(task, 5)


@contextlib.contextmanager
def no_network_leak() -> Iterator[None]:
    """Guard: every request discord.py makes must reach the fake (base is loopback)."""
    assert Route.BASE.startswith("http://127.0.0.1:")
    yield


async def test_fake_discord_login_ready_and_guild_cache(dc: FakeDiscord) -> None:
    with no_network_leak():
        async with running(make_bot(members=True), dc) as bot:
            client = bot.client
            assert client.user is not None and client.user.id == dc.ids.bot
            assert client.application_id == dc.ids.application
            guild = client.get_guild(dc.ids.guild)
            assert guild is not None and guild.name == "Voice Lab"
            assert isinstance(guild.get_channel(dc.ids.text_channel), discord.TextChannel)
            assert isinstance(guild.get_thread(dc.ids.thread), discord.Thread)
            admin = guild.get_member(dc.ids.admin)
            assert admin is not None and admin.guild_permissions.manage_guild
    paths = [(r.method, r.path) for r in dc.requests]
    assert paths[:2] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me")]
    identify = dc.identify_payloads[0]
    assert identify["token"] == dc.token
    assert identify["intents"] & (1 << 15)  # message_content requested
    assert dc.gateway.connect_queries[0]["v"] == "10"


async def test_fake_discord_rejects_a_wrong_token(dc: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()


async def test_fake_discord_voice_message_reaches_on_message_and_downloads(
    dc: FakeDiscord,
) -> None:
    ogg = make_tone(1.0, "ogg")
    async with running(make_bot(), dc) as bot:
        sent = await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, ogg, 1.0)
        message = await asyncio.wait_for(bot.inbox.get(), 5)
        assert message.id == int(sent["id"])
        assert message.flags.voice
        attachment = message.attachments[0]
        assert attachment.is_voice_message()
        assert attachment.duration == 1.0
        assert attachment.waveform == base64.b64decode(make_waveform())
        assert attachment.content_type == "audio/ogg"
        assert await attachment.read() == ogg
    assert dc.downloads[attachment.id] == 1


async def test_fake_discord_without_message_content_intent_strips_guild_messages(
    dc: FakeDiscord,
) -> None:
    ogg = make_tone(0.5, "ogg")
    async with running(make_bot(message_content=False), dc) as bot:
        await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, ogg, 0.5)
        guild_message = await asyncio.wait_for(bot.inbox.get(), 5)
        await dc.send_voice_message(dc.ids.dm_channel, dc.ids.member, ogg, 0.5)
        dm_message = await asyncio.wait_for(bot.inbox.get(), 5)
    assert guild_message.attachments == []
    assert isinstance(dm_message.channel, discord.DMChannel)
    assert dm_message.attachments[0].is_voice_message()


async def test_fake_discord_tree_sync_uses_the_guild_route(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(name="speak", description="Text to a voice message")
    async def speak(interaction: discord.Interaction, text: str) -> None:
        del interaction, text

    guild = discord.Object(dc.ids.guild)
    bot.tree.copy_global_to(guild=guild)
    async with running(bot, dc):
        synced = await bot.tree.sync(guild=guild)
    request = dc.find_requests("PUT", rf"/applications/{dc.ids.application}/guilds/\d+/commands")
    assert request and request[0].json[0]["name"] == "speak"
    assert [c.id for c in synced] == [int(c["id"]) for c in dc.commands[dc.ids.guild]]
    assert synced[0].guild_id == dc.ids.guild


async def test_fake_discord_slash_defer_then_followup(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(name="speak", description="Text to a voice message")
    async def speak(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.defer(thinking=True)
        bot.seen.put_nowait((text, interaction.user.id, interaction.permissions.manage_guild))
        await interaction.followup.send("x")

    async with running(bot, dc):
        await bot.tree.sync(guild=None)
        payload = await dc.send_slash("speak", {"text": "hello"}, user_id=dc.ids.admin)
        assert await asyncio.wait_for(bot.seen.get(), 5) == ("hello", dc.ids.admin, True)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.followups)
    assert record.callbacks == [{"type": 5}]
    assert record.original is not None and record.original["content"] == "x"
    assert not record.original["flags"] & 128  # the follow-up replaced the "thinking" message
    followup = dc.find_requests("POST", rf"/webhooks/{dc.ids.application}/[^/]+")[0]
    assert followup.json["content"] == "x" and followup.query["wait"] == "1"


async def test_fake_discord_message_context_menu_gets_the_target(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.context_menu(name="Transcribe")
    async def transcribe(interaction: discord.Interaction, message: discord.Message) -> None:
        bot.seen.put_nowait(message)
        await interaction.response.send_message("working", ephemeral=True)

    ogg = make_tone(0.5, "ogg")
    async with running(bot, dc):
        target = await dc.send_voice_message(None, None, ogg, 0.5)
        await asyncio.wait_for(bot.inbox.get(), 5)
        payload = await dc.send_message_command("Transcribe", target)
        message = await asyncio.wait_for(bot.seen.get(), 5)
        assert isinstance(message, discord.Message)
        assert message.id == int(target["id"])
        assert message.attachments[0].is_voice_message()
        await dc.wait_for(lambda: dc.interaction(payload).original)
    original = dc.interaction(payload).original
    assert original is not None and original["flags"] & 64 and original["content"] == "working"


async def test_fake_discord_send_records_allowed_mentions(dc: FakeDiscord) -> None:
    async with running(make_bot(), dc) as bot:
        channel = bot.client.get_channel(dc.ids.text_channel)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("hi @everyone", allowed_mentions=discord.AllowedMentions.none())
        await channel.typing()
    request = dc.find_requests("POST", rf"/channels/{dc.ids.text_channel}/messages")[0]
    assert request.json["allowed_mentions"] == {"parse": []}
    assert dc.bot_messages(dc.ids.text_channel)[0]["id"] == str(sent.id)
    assert dc.find_requests("POST", r"/channels/\d+/typing")[0].status == 204


def voice_form(ogg: bytes, seconds: float) -> list[dict[str, object]]:
    """The multipart ``form=`` for a voice message, as HTTPClient.request expects it."""
    payload = {
        "flags": 8192,
        "attachments": [
            {
                "id": 0,
                "filename": "voice-message.ogg",
                "duration_secs": seconds,
                "waveform": make_waveform(),
            }
        ],
    }
    return [
        {"name": "payload_json", "value": json.dumps(payload)},
        {
            "name": "files[0]",
            "value": ogg,  # bytes, not a file object: discord.py rebuilds the form per retry
            "filename": "voice-message.ogg",
            "content_type": "audio/ogg",
        },
    ]


async def test_fake_discord_raw_multipart_voice_message(dc: FakeDiscord) -> None:
    ogg = make_tone(1.5, "ogg")
    dc.fail("POST", r"/channels/\d+/messages", 429, retry_after=0.05)  # retried by discord.py
    async with running(make_bot(), dc) as bot:
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=dc.ids.text_channel)
        data = await bot.client.http.request(route, form=voice_form(ogg, 1.5))
        channel = bot.client.get_channel(dc.ids.text_channel)
        assert isinstance(channel, discord.TextChannel)
        message = discord.Message(state=bot.client._connection, channel=channel, data=data)
    attempts = dc.find_requests("POST", r"/channels/\d+/messages")
    assert [r.status for r in attempts] == [429, 200]
    part = attempts[1].part("files[0]")
    assert (part.filename, part.content_type, part.data) == ("voice-message.ogg", "audio/ogg", ogg)
    assert attempts[1].json["flags"] == 8192
    assert message.flags.voice and message.attachments[0].is_voice_message()


async def test_fake_discord_voice_followup_via_http_request(dc: FakeDiscord) -> None:
    bot = make_bot()
    done: asyncio.Queue[int] = asyncio.Queue()

    @bot.tree.command(name="speak", description="Text to a voice message")
    async def speak(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.defer(thinking=True)
        route = Route(
            "POST",
            "/webhooks/{webhook_id}/{webhook_token}",
            webhook_id=interaction.application_id,
            webhook_token=interaction.token,
        )
        form = voice_form(make_tone(0.5, "ogg"), 0.5)
        data = await interaction.client.http.request(route, form=form, params={"wait": "true"})
        done.put_nowait(int(data["id"]))

    async with running(bot, dc):
        payload = await dc.send_slash("speak", {"text": "hi"}, command_guild=False)
        message_id = await asyncio.wait_for(done.get(), 5)
    original = dc.interaction(payload).original
    assert original is not None and int(original["id"]) == message_id
    assert original["flags"] == 8192 and original["attachments"][0]["duration_secs"] == 0.5


async def test_fake_discord_refused_voice_message_is_forbidden_50173(dc: FakeDiscord) -> None:
    dc.refuse_voice_messages = True
    async with running(make_bot(), dc) as bot:
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=dc.ids.text_channel)
        with pytest.raises(discord.Forbidden) as caught:
            await bot.client.http.request(route, form=voice_form(make_tone(0.5, "ogg"), 0.5))
    assert caught.value.code == 50173
    assert not dc.bot_messages()


async def test_fake_discord_expired_token_answers_50027(dc: FakeDiscord) -> None:
    bot = make_bot()
    errors: asyncio.Queue[discord.HTTPException] = asyncio.Queue()

    @bot.tree.command(name="speak", description="Text to a voice message")
    async def speak(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.defer()
        dc.expire_token(interaction.token)
        try:
            await interaction.followup.send("too late")
        except discord.HTTPException as exc:
            errors.put_nowait(exc)

    async with running(bot, dc):
        await dc.send_slash("speak", {"text": "hi"}, command_guild=False)
        exc = await asyncio.wait_for(errors.get(), 5)
    assert (exc.status, exc.code) == (401, 50027)


async def test_fake_discord_edit_delete_and_unknown_route(dc: FakeDiscord) -> None:
    async with running(make_bot(), dc) as bot:
        channel = bot.client.get_channel(dc.ids.thread)
        assert isinstance(channel, discord.Thread)
        sent = await channel.send("draft")
        edited = await sent.edit(content="final")
        fetched = await channel.fetch_message(sent.id)
        await sent.delete()
        with pytest.raises(discord.NotFound) as caught:
            await channel.fetch_message(sent.id)
        with pytest.raises(discord.NotFound):
            await bot.client.http.request(Route("GET", "/nothing/here"))
    assert edited.content == fetched.content == "final"
    assert caught.value.code == 10008
    assert [r.path for r in dc.unknown_requests] == ["/nothing/here"]


async def test_fake_discord_faults_and_auth_over_plain_http(dc: FakeDiscord) -> None:
    dc.fail("GET", r"/channels/\d+", 500, times=1)
    headers = {"Authorization": f"Bot {dc.token}"}
    async with aiohttp.ClientSession() as session:
        url = f"{dc.api_base}/channels/{dc.ids.text_channel}"
        async with session.get(url) as resp:
            assert resp.status == 401
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 500
        async with session.get(url, headers=headers) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["name"] == "general"


async def test_fake_discord_reconnect_resumes_the_session(dc: FakeDiscord) -> None:
    async with running(make_bot(), dc) as bot:
        session = dc.gateway.live_sessions[0]
        seq_before = session.seq
        await dc.request_reconnect()
        resume = await dc.wait_for(lambda: [p for p in dc.gateway.received if p["op"] == 6])
        await dc.send_message(None, None, "after resume")
        message = await asyncio.wait_for(bot.inbox.get(), 5)
    assert resume[0]["d"]["session_id"] == session.session_id
    assert resume[0]["d"]["seq"] == seq_before
    assert message.content == "after resume"
    assert len(dc.identify_payloads) == 1


async def test_fake_discord_disallowed_intent_closes_with_4014(dc: FakeDiscord) -> None:
    dc.gateway.allowed_privileged_intents = 0
    client = make_bot(message_content=True).client
    await client.login(dc.token)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.connect(), 5)
    await client.close()


async def test_fake_discord_slash_attachment_option_is_resolved(dc: FakeDiscord) -> None:
    bot = make_bot()
    seen: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()

    @bot.tree.command(name="transcribe", description="Transcribe an audio file")
    async def transcribe(interaction: discord.Interaction, audio: discord.Attachment) -> None:
        seen.put_nowait((interaction.filesize_limit, await audio.read()))
        await interaction.response.send_message("ok")

    ogg = make_tone(0.5, "ogg")
    async with running(bot, dc):
        attachment = dc.add_attachment(ogg, "note.ogg")
        await dc.send_slash("transcribe", {"audio": attachment}, guild=False, command_guild=False)
        limit, data = await asyncio.wait_for(seen.get(), 5)
    assert (limit, data) == (dc.upload_limit, ogg)


async def test_fake_discord_enforces_message_rules(dc: FakeDiscord) -> None:
    dc.upload_limit = 1000
    async with running(make_bot(), dc) as bot:
        channel = bot.client.get_channel(dc.ids.text_channel)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=discord.File(io.BytesIO(b"\0" * 1001), "big.ogg"))
        bad = voice_form(b"OggS", 1.0)
        bad[0]["value"] = json.dumps({"flags": 8192, "content": "no text allowed"})
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=dc.ids.text_channel)
        with pytest.raises(discord.HTTPException) as voice_with_text:
            await bot.client.http.request(route, form=bad)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert (too_big.value.status, too_big.value.code) == (413, 40005)
    assert voice_with_text.value.code == 50159


async def test_fake_discord_edit_original_after_defer(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(name="speak", description="Text to a voice message")
    async def speak(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        await interaction.edit_original_response(content=f"said {text}")

    async with running(bot, dc):
        payload = await dc.send_slash("speak", {"text": "hi"}, command_guild=False)
        record = dc.interaction(payload)
        await dc.wait_for(lambda: record.original and record.original["edited_timestamp"])
    assert record.original is not None
    assert record.original["content"] == "said hi"
    assert record.original["flags"] == 64  # still ephemeral, no longer loading
    edit = dc.find_requests("PATCH", r"/webhooks/\d+/[^/]+/messages/@original")
    assert len(edit) == 1 and edit[0].status == 200


async def test_fake_discord_fault_can_target_voice_payloads(dc: FakeDiscord) -> None:
    fault = dc.fail(
        "POST",
        r"/channels/\d+/messages$",
        403,
        {"message": "Missing Permissions", "code": 50013},
        times=None,
        when=lambda r: bool(r.json and r.json.get("flags", 0) & 8192),
    )
    async with running(make_bot(), dc) as bot:
        channel = bot.client.get_channel(dc.ids.text_channel)
        assert isinstance(channel, discord.TextChannel)
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel.id)
        with pytest.raises(discord.Forbidden) as caught:
            await bot.client.http.request(route, form=voice_form(make_tone(0.5, "ogg"), 0.5))
        await channel.send("text still works")
    assert caught.value.code == 50013 and fault.hits == 1
