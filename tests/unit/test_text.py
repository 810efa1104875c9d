"""Translated chat text: catalogs complete and faithful, plural rules, locale formatting,
language negotiation, stored messages, and the language codes people type."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot.chat.replies import transcript_reply
from bot.chat.settings import parse_language, parse_ui_language, parse_voice
from bot.jobs.outcomes import deadline_message
from bot.model.errors import AudioTooLong, BotError, InputError, ProviderTimeout
from bot.model.job import Job, JobKind, JobState
from bot.model.speech import Origin, Segment, Transcript
from bot.text import ENGLISH, Duration, Msg, Size, decode, encode, msg, msgn, text_for
from bot.text.catalog import po_path, shipped_locales, translations
from bot.text.checks import _locale_problems, problems, source_messages

SHIPPED = ("en", "de", "es", "fr", "pt_BR", "ru", "uk", "zh_Hant_HK")


def test_text_every_shipped_catalog_is_complete_and_faithful() -> None:
    assert set(SHIPPED) <= set(shipped_locales())
    assert problems() == []


def test_text_source_scan_finds_marked_messages() -> None:
    found = source_messages()
    assert "Speaker {n}" in found  # gettext(...)
    assert "The file is empty." in found  # msg(...)
    assert "You started {n} job in the last minute (limit {limit}). " in "".join(found) or any(
        m.startswith("You started {n} job") for m in found
    )  # msgn(...)


def _broken(tmp_path: Path, edit: str) -> list[str]:
    """The problems found in a copy of the German catalog after one edit."""
    with po_path("de").open("rb") as fp:
        cat: Catalog = read_po(fp, locale="de")
    if edit == "missing":
        cat.delete("The file is empty.")
    elif edit == "fuzzy":
        cat["The file is empty."].flags.add("fuzzy")
    elif edit == "placeholder":
        cat["Job {id} ({kind}): {state}"].string = "Auftrag {id} ({art}): {state}"
    elif edit == "plural":
        cat[("{n} voice:", "{n} voices:")].string = ("{n} Stimme:",)
    buffer = io.BytesIO()
    write_po(buffer, cat)
    path = tmp_path / "de.po"
    path.write_bytes(buffer.getvalue())
    import bot.text.checks as checks

    original = checks.po_path
    checks.po_path = lambda locale: path  # type: ignore[assignment]
    try:
        return list(_locale_problems("de", source_messages()))
    finally:
        checks.po_path = original  # type: ignore[assignment]


@pytest.mark.parametrize("edit", ["missing", "fuzzy", "placeholder", "plural"])
def test_text_check_catches_a_broken_catalog(tmp_path: Path, edit: str) -> None:
    found = _broken(tmp_path, edit)
    assert len(found) == 1, found
    assert {
        "missing": "missing",
        "fuzzy": "fuzzy",
        "placeholder": "placeholders",
        "plural": "untranslated",
    }[edit] in found[0]


@pytest.mark.parametrize(
    ("locale", "counts"),
    [
        (
            "ru",
            {1: "1 голос:", 2: "2 голоса:", 5: "5 голосов:", 11: "11 голосов:", 21: "21 голос:"},
        ),
        (
            "uk",
            {1: "1 голос:", 3: "3 голоси:", 7: "7 голосів:", 12: "12 голосів:", 44: "44 голоси:"},
        ),
        ("de", {1: "1 Stimme:", 2: "2 Stimmen:"}),
        ("fr", {0: "0 voix :", 1: "1 voix :", 2: "2 voix :"}),
        ("zh_Hant_HK", {1: "1 個語音：", 3: "3 個語音："}),
    ],
)
def test_text_plural_forms_follow_the_language(locale: str, counts: dict[int, str]) -> None:
    tr = text_for(locale)
    for n, expected in counts.items():
        assert tr.ngettext("{n} voice:", "{n} voices:", n) == expected, (locale, n)


def test_text_numbers_sizes_and_durations_per_locale() -> None:
    assert text_for("en").number(12345) == "12,345"
    assert text_for("de").number(12345) == "12.345"
    assert text_for("ru").number(12345) == "12\xa0345"
    assert text_for("de").size(int(25.3 * 1024 * 1024)) == "25,3 MB"
    assert text_for("fr").size(20 * 1024 * 1024) == "20 Mo"
    assert text_for("en").duration(11400) == "3 hr 10 min"
    assert text_for("de").duration(11400) == "3 Std. 10 Min."
    assert text_for("de").duration(120, short=False) == "2 Minuten"
    assert text_for("ru").duration(300, short=False) == "5 минут"
    assert text_for("zh_Hant_HK").duration(30) == "30 秒"


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("pt-br", "pt_BR"),
        ("pt-BR", "pt_BR"),
        ("pt-PT", "pt_BR"),
        ("es-419", "es"),
        ("zh-TW", "zh_Hant_HK"),
        ("zh-hans", "zh_Hant_HK"),
        ("uk", "uk"),
        ("en-US", "en"),
        ("ja", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_text_client_tags_negotiate_to_a_shipped_locale(tag: str | None, locale: str) -> None:
    assert text_for(tag).code == locale


def test_text_messages_survive_storage_and_render_per_reader() -> None:
    stored = _deadline_message_for(120)
    assert decode(stored).args["duration"] == Duration(120.0)
    assert ENGLISH.render(stored) == (
        "The speech service did not finish within 2 minutes, so the job was stopped."
    )
    assert (
        text_for("de")
        .render(stored)
        .startswith("Der Sprachdienst ist nicht innerhalb von 2 Minuten")
    )
    plain = encode(ProviderTimeout().text)
    assert plain == "The speech service did not answer in time; please try again later."  # readable
    assert (
        text_for("uk").render(plain)
        == "Мовленнєвий сервіс не відповів вчасно; спробуйте ще раз пізніше."
    )
    assert text_for("de").render("A provider's own words") == "A provider's own words"
    counted = encode(msgn("{n} voice:", "{n} voices:", 3))
    assert text_for("ru").render(counted) == "3 голоса:"
    sized = encode(
        msg(
            "This file is {size}; I can take at most {limit}.",
            size=Size(3 << 20),
            limit=Size(25 << 20),
        )
    )
    assert text_for("pt_BR").render(sized) == "Este arquivo tem 3 MB; aceito no máximo 25 MB."


def _deadline_message_for(seconds: float) -> str:
    job = Job(
        id="ab12cd",
        kind=JobKind.STT,
        origin=Origin("telegram", "1", "2"),
        provider="p",
        model="m",
        options={},
        state=JobState.QUEUED,
        created_at=0.0,
        updated_at=0.0,
        deadline_at=seconds,
    )
    return deadline_message(job)


def test_text_errors_keep_english_for_logs_and_translate_for_readers() -> None:
    exc = AudioTooLong(
        msg("Audio is too long: the limit is about {duration}.", duration=Duration(180)),
        limit_minutes=3,
    )
    assert exc.user_message == "Audio is too long: the limit is about 3 minutes."
    assert (
        text_for("fr").render(exc.text)
        == "L’audio est trop long : la limite est d’environ 3 minutes."
    )
    plain = BotError("operator detail")
    assert plain.user_message == "operator detail" and isinstance(plain.text, Msg)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("de", "de"),
        ("de-DE", "de-DE"),
        ("German", "de"),
        ("Deutsch", "de"),
        ("iw", "he"),
        ("cantonese", "yue"),
        ("粵語", "yue"),
        ("Brazilian Portuguese", "pt-BR"),
        ("español", "es"),
        ("AUTO", "auto"),
    ],
)
def test_text_language_codes_people_type(typed: str, code: str) -> None:
    assert parse_language(typed) == code


def test_text_language_checked_against_the_model_with_a_suggestion() -> None:
    whisper = frozenset({"en", "de", "he", "yue", "fr"})
    assert parse_language("de-DE", whisper) == "de"
    assert parse_language("iw", whisper) == "he"
    with pytest.raises(InputError) as wrong:
        parse_language("Germna", whisper)
    assert (
        text_for("de").render(wrong.value.text)
        == "'Germna' kenne ich nicht als Sprache. Meintest du Deutsch (de)?"
    )
    with pytest.raises(InputError) as unsupported:
        parse_language("Klingon", whisper)
    assert (
        ENGLISH.render(unsupported.value.text)
        == "The transcription model does not know Klingon (tlh)."
    )
    with pytest.raises(InputError):
        parse_language("klingon-warrior-speak!")


def test_text_voices_and_ui_languages_people_type() -> None:
    voices = frozenset({"af_bella", "am_adam", "en_US-joe-medium"})
    assert parse_voice("default", voices) is None
    with pytest.raises(InputError) as unknown:
        parse_voice("af_bela", voices)
    assert "Did you mean af_bella?" in ENGLISH.render(unknown.value.text)
    assert parse_ui_language("Deutsch") == "de"
    assert parse_ui_language("pt-br") == "pt_BR"
    assert parse_ui_language("auto") is None
    with pytest.raises(InputError):
        parse_ui_language("Japanese")


def test_text_catalogs_compile_without_downloads_or_mo_files() -> None:
    assert not list(po_path("de").parent.glob("*.mo"))  # compiled in memory, never shipped
    assert translations("de").gettext("Settings:") == "Einstellungen:"


def _finished(options: dict[str, object]) -> Job:
    transcript = Transcript(
        text="",
        segments=(
            Segment("Hallo zusammen.", 0.0, 1.0, "spk_a"),
            Segment("Guten Morgen.", 1.0, 2.0, "spk_b"),
        ),
        language="de",
        diarized=True,
    )
    return Job(
        id="ab12cd",
        kind=JobKind.STT,
        origin=Origin("telegram", "1", "2"),
        provider="p",
        model="m",
        options={"language": "auto", "diarize": True, **options},
        state=JobState.COMPLETED,
        created_at=0.0,
        updated_at=0.0,
        deadline_at=60.0,
        result=transcript.to_dict(),
    )


def test_text_transcript_reply_output_modes_and_translated_speaker_labels() -> None:
    spanish = text_for("es")
    messages = transcript_reply(_finished({}), limit=4096, max_messages=3, tr=spanish)
    assert messages.files == ()
    assert messages.messages[0].startswith("🇩🇪 Alemán, detectado\n\nHablante 1: Hallo zusammen.")
    as_file = transcript_reply(
        _finished({"output": "file"}), limit=4096, max_messages=3, tr=spanish
    )
    assert as_file.messages == (
        "🇩🇪 Alemán, detectado\n📄 La transcripción (4 palabras) va adjunta como archivo.",
    )
    assert [f.filename for f in as_file.files] == ["transcript-ab12cd.txt", "transcript-ab12cd.srt"]
    assert b"Hablante 2: Guten Morgen." in as_file.files[1].data
    both = transcript_reply(_finished({"output": "both"}), limit=4096, max_messages=3, tr=spanish)
    assert len(both.messages) == 1 and len(both.files) == 2
    german = transcript_reply(_finished({}), limit=4096, max_messages=3, tr=text_for("de"))
    assert german.messages[0].startswith("Sprecher 1: Hallo zusammen.")  # German is no news
