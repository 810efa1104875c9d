"""A German Telegram user and a Brazilian Discord user get a whole session in their language
(voice note, /speak, /status, a refusal, /help, the command menus) without configuring anything;
then a person's own settings win over the chat's."""

from __future__ import annotations

import re
from pathlib import Path

from testkit.discord_bot import message_writes, running_bot
from testkit.fakes.audio import make_tone
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.telegram_bot import USER, running

# Words of the English texts that must not leak into a translated session.
ENGLISH = re.compile(
    r"\b(job|Transcribing|Synthesizing|Queued|Recent jobs|Sorry|limit is|Files up to|"
    r"detected|Voice message posted|Settings|needs the Manage)\b"
)


def _no_english(texts: list[str]) -> None:
    for text in texts:
        assert not ENGLISH.search(text), text


async def test_i18n_german_telegram_user_gets_the_whole_session_in_german(tmp_path: Path) -> None:
    async with running(tmp_path, limits={"max_speak_chars": 40}) as w:
        w.tg.add_user(USER, "Jonas", language_code="de")
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        assert placeholder.text is not None
        assert placeholder.text.startswith("🎙 Wird transkribiert… Auftrag <code>")
        assert placeholder.message is not None
        transcript = await w.edit_of(placeholder.message["message_id"])
        assert transcript.text is not None
        assert transcript.text.startswith("🇺🇸 Englisch, erkannt\n\nFake transcript of")

        speak = w.tg.send_text(USER, USER, "/speak Hallo zusammen")
        spoken = await w.reply_to(speak)
        assert spoken.text is not None and spoken.text.startswith("🔊 Wird gesprochen… Auftrag")
        await w.tg.wait_for(lambda c: c.method == "sendVoice" and c.chat_id == USER)
        await w.tg.wait_for(lambda c: c.method == "deleteMessage" and c.chat_id == USER)

        status = await w.reply_to(w.tg.send_text(USER, USER, "/status"))
        assert status.text is not None and status.text.startswith("Letzte Aufträge:")
        assert "STT fertig, vor" in status.text and "Details mit /status &lt;id&gt;." in status.text

        refusal = await w.reply_to(w.tg.send_text(USER, USER, "/speak " + "x" * 50))
        assert refusal.text == (
            "Der Text hat 50 Zeichen; erlaubt sind 40. Bitte schick einen kürzeren Text."
        )

        shown = await w.reply_to(w.tg.send_text(USER, USER, "/help"))
        assert shown.text is not None and "<b>Sprache → Text</b>" in shown.text
        assert shown.text.endswith("Dateien bis 20 MB.")

        texts = [c.text for c in w.tg.sent(USER) if c.text]
        assert len(texts) >= 6
        _no_english(texts)
    menu = {c["command"]: c["description"] for c in w.tg.commands(language_code="de")}
    assert menu["speak"] == "Text als Sprachnachricht vorlesen"
    assert {c["command"]: c["description"] for c in w.tg.commands()}["speak"] == (
        "Read text aloud as a voice message"
    )
    assert w.tg.commands(language_code="pt")[0]["description"] != w.tg.commands()[0]["description"]


async def test_i18n_brazilian_discord_user_gets_the_whole_session_in_portuguese(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    dc.world.guild_locale = "pt-BR"
    dc.world.user_locales[dc.ids.member] = "pt-BR"
    async with running_bot(tmp_path, dc, nano, canto):
        await dc.send_voice_message(dc.ids.text_channel, dc.ids.member, make_tone(1.0), 1.0)
        [reply] = await dc.wait_for(
            lambda: [m for m in dc.bot_messages() if "Fake transcript" in m["content"]]
        )
        assert reply["content"].startswith("🇺🇸 Inglês, detectado\n\nFake transcript of")

        spoken = dc.interaction(await dc.send_slash("speak", {"text": "Olá, pessoal"}))
        await dc.wait_for(
            lambda: (
                spoken.original and "🔊 Mensagem de voz publicada (" in spoken.original["content"]
            )
        )

        status = dc.interaction(await dc.send_slash("status"))
        await dc.wait_for(lambda: status.original)
        assert status.original is not None
        assert status.original["content"].startswith("Tarefas recentes:")

        refused = dc.interaction(
            await dc.send_slash("settings", {"name": "diarize", "value": "on"})
        )
        await dc.wait_for(lambda: refused.original)
        assert refused.original is not None and refused.original["content"] == (
            "Para mudar as configurações deste servidor é preciso a permissão Gerenciar Servidor."
        )

        shown = dc.interaction(await dc.send_slash("help"))
        await dc.wait_for(lambda: shown.original)
        assert shown.original is not None
        assert shown.original["content"].startswith("Eu transformo mensagens de voz em texto")

        texts = [str(r.json.get("content") or "") for r in message_writes(dc)]
        texts = [t for t in texts if t and "Fake transcript" not in t]
        assert any(t.startswith("🎙 Transcrevendo…") for t in texts)
        _no_english(texts)
    commands = {c["name"]: c for c in dc.commands[None]}
    assert commands["speak"]["description"] == "Say a text as a voice message in this channel"
    assert commands["speak"]["description_localizations"]["pt-BR"] == (
        "Falar um texto como mensagem de voz neste canal"
    )
    assert commands["speak"]["description_localizations"]["de"].startswith("Einen Text")
    [text_option] = [o for o in commands["speak"]["options"] if o["name"] == "text"]
    assert text_option["description_localizations"]["pt-BR"] == "O que dizer"
    assert commands["Transcribe"]["name_localizations"]["pt-BR"] == "Transcrever"
    assert (
        "name_localizations" not in commands["speak"] or not commands["speak"]["name_localizations"]
    )


async def test_i18n_own_settings_win_over_the_chat_and_are_shown_with_their_source(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as w:
        w.tg.add_user(USER, "Olena", language_code="uk")
        chat = await w.reply_to(w.tg.send_text(USER, USER, "/settings language German"))
        assert chat.text is not None and "language: Німецька (de) (цей чат)" in chat.text
        mine = await w.reply_to(w.tg.send_text(USER, USER, "/settings me language iw"))
        assert mine.text is not None and "language: Іврит (he) (ваше налаштування)" in mine.text
        english = await w.reply_to(w.tg.send_text(USER, USER, "/settings me ui_language English"))
        assert english.text is not None and "ui_language: English (your setting)" in english.text
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        assert placeholder.text is not None and placeholder.text.startswith("🎙 Transcribing…")
        await w.edit_of(placeholder.message["message_id"] if placeholder.message else 0)
        [job] = await w.core.service.recent_jobs("telegram", str(USER))
        assert job.options["language"] == "he" and job.origin.locale == "en"
        bad = await w.reply_to(w.tg.send_text(USER, USER, "/settings me diarize on"))
        assert bad.text is not None and "is set per chat" in bad.text


async def test_i18n_discord_autocompletes_setting_values(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto):
        output = dc.interaction(
            await dc.send_autocomplete("settings", {"name": "output", "value": "f"}, "value")
        )
        ui = dc.interaction(
            await dc.send_autocomplete("settings", {"name": "ui_language", "value": "pt"}, "value")
        )
        voice = dc.interaction(
            await dc.send_autocomplete("speak", {"text": "hi", "voice": "a"}, "voice")
        )
        await dc.wait_for(lambda: output.callbacks and ui.callbacks and voice.callbacks)
    assert output.callbacks[0]["type"] == 8
    assert [c["value"] for c in output.callbacks[0]["data"]["choices"]] == ["file"]
    assert [c["value"] for c in ui.callbacks[0]["data"]["choices"]] == ["pt-BR"]
    assert voice.callbacks[0]["data"]["choices"] == []  # NanoGPT does not list its voices
