"""Bad-input corpus through the real Telegram adapter: each case gets a clear, specific answer,
the bot keeps working, and a job stored before the bad input is still there afterwards."""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
import yaml

from adapters import config_readers
from bot.config.load import load_config
from bot.model.errors import ConfigError
from bot.model.job import Job
from testkit.fakes.audio import make_tone
from testkit.support import config_dict
from testkit.telegram_bot import (
    OTHER,
    USER,
    World,
    placeholder_job_id,
    running,
    transcript_answer,
)

pytestmark = pytest.mark.usefixtures("ptb_timedelta")

Act = Callable[[World, Job], Awaitable[str]]


# -- inputs ------------------------------------------------------------------------------------


@functools.cache
def tone(seconds: float = 2.0, freq: float = 440.0, rate: int = 48000) -> bytes:
    return make_tone(seconds, freq=freq, rate=rate)


@functools.cache
def video_only_mp4() -> bytes:
    """A real MP4 with a video track and no audio track."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame(64, 64, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.pts = i
            frame.time_base = Fraction(1, 10)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


# -- driving the bot ---------------------------------------------------------------------------


async def final_reply(w: World, message: dict[str, Any], chat: int = USER) -> str:
    """The bot's final answer to ``message``: a direct reply, or the edit of its placeholder."""
    first = await w.reply_to(message)
    if first.method != "sendMessage" or "…" not in (first.text or ""):
        return first.text or f"<{first.method}>"
    assert first.message is not None
    await w.delivered(placeholder_job_id(first))
    edit = await w.edit_of(first.message["message_id"], chat=chat)
    return edit.text or ""


async def voice(w: World, data: bytes, **kwargs: Any) -> str:
    return await final_reply(w, w.tg.send_voice(USER, USER, data, **kwargs))


async def command(w: World, text: str, chat: int = USER, reply_to: int | None = None) -> str:
    return await final_reply(w, w.tg.send_text(chat, chat, text, reply_to=reply_to), chat)


async def spoken(w: World, text: str) -> str:
    """Send /speak; return "voice: <text the provider got>" or the bot's text answer."""
    asked = w.tg.send_text(USER, USER, f"/speak {text}")
    answer = await w.reply_to(asked)
    if "…" in (answer.text or ""):
        call = await w.tg.wait_for("sendVoice")
        assert call.params["reply_parameters"]["message_id"] == asked["message_id"]
        return "voice: " + w.nano.requests_to("tts")[-1].json["text"]
    return answer.text or ""


async def transcript_of(w: World, text: str) -> str:
    """A voice note whose transcript (from the provider) is ``text``; returns the reply."""
    w.nano.push("transcribe", 200, transcript_answer(text))
    reply = await voice(w, tone(1.0, 660.0))
    assert "<" not in reply and ">" not in reply  # Telegram HTML: nothing unescaped
    assert html.unescape(reply) == text
    return reply


async def silence(w: World) -> str:
    """Silent audio: the provider returns an empty transcript."""
    w.nano.push("transcribe", 200, transcript_answer(""))
    return await voice(w, make_tone(1.0, amplitude=0.0))


@dataclass(frozen=True)
class Case:
    name: str
    act: Act
    expect: tuple[str, ...]
    sections: dict[str, Any] = field(default_factory=dict)
    new_jobs: int = 0  # jobs the bad input itself legitimately creates


def case(name: str, act: Act, *expect: str, new_jobs: int = 0, **sections: Any) -> Case:
    return Case(name, act, expect, sections, new_jobs)


UNREADABLE = "This file isn't audio I can read"
LONG_TEXT = "x" * 100_000
CASES = [
    # audio
    case("zero_byte_voice", lambda w, j: voice(w, b""), "The file is empty."),
    case("truncated_ogg_header", lambda w, j: voice(w, tone()[:200]), UNREADABLE, "cut off"),
    case(
        "truncated_ogg_mid_stream_transcribes_what_arrived",
        lambda w, j: voice(w, tone()[: len(tone()) // 2]),
        "Fake transcript of",
        new_jobs=1,
    ),
    case(
        "corrupt_ogg_garbage_inside",
        lambda w, j: voice(w, tone()[:100] + bytes(range(256)) * 20 + tone()[-100:]),
        UNREADABLE,
    ),
    case("ogg_magic_only", lambda w, j: voice(w, b"OggS" + bytes(50)), UNREADABLE),
    case(
        "text_file_named_ogg",
        lambda w, j: final_reply(
            w,
            w.tg.send_document(
                USER, USER, b"shopping list\nmilk\n", mime_type="audio/ogg", file_name="a.ogg"
            ),
        ),
        UNREADABLE,
        "looks like text",
    ),
    case(
        "pdf_named_mp3",
        lambda w, j: final_reply(
            w,
            w.tg.send_document(
                USER,
                USER,
                b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 4,
                mime_type="application/pdf",
                file_name="song.mp3",
            ),
        ),
        UNREADABLE,
        "unknown or damaged format",
    ),
    case(
        "random_bytes_voice",
        lambda w, j: voice(w, bytes((i * 37 + 11) % 256 for i in range(5000))),
        "unknown or damaged format",
    ),
    case(
        "video_note_without_sound",
        lambda w, j: final_reply(w, w.tg.send_video_note(USER, USER, video_only_mp4())),
        "This video has no sound.",
    ),
    case(
        "video_document_without_sound",
        lambda w, j: final_reply(
            w,
            w.tg.send_document(
                USER, USER, video_only_mp4(), mime_type="video/mp4", file_name="clip.mp4"
            ),
        ),
        "This video has no sound.",
    ),
    case(
        "voice_over_download_size_limit",
        lambda w, j: voice(w, b"OggS", file_size=200 * 1024 * 1024),
        "200 MB",
        "20 MB",
    ),
    case(
        "audio_over_duration_limit",
        lambda w, j: voice(w, tone(20.0, 300.0, 8000)),
        "Audio is too long",
        "3 seconds",
        limits={"max_audio_minutes": 0.05},
    ),
    case(
        "silence_says_no_speech",
        lambda w, j: silence(w),
        "No speech detected",
        new_jobs=1,
    ),
    case("transcribe_without_reply", lambda w, j: command(w, "/transcribe"), "Reply to a voice"),
    case(
        "transcribe_reply_to_text",
        lambda w, j: command(
            w, "/transcribe", reply_to=w.tg.send_text(USER, USER, "just text")["message_id"]
        ),
        "Reply to a voice note or audio file with /transcribe",
    ),
    # /speak text
    case("speak_nothing", lambda w, j: command(w, "/speak"), "Nothing to say", "/speak Hello"),
    case("speak_whitespace_only", lambda w, j: command(w, "/speak  \t \n  "), "Nothing to say"),
    case(
        "speak_zero_width_only",
        lambda w, j: command(w, "/speak \u200b\u200c\ufeff\u2060"),
        "Nothing to say",
    ),
    case(
        "speak_100k_characters",
        lambda w, j: command(w, f"/speak {LONG_TEXT}"),
        "100,000 characters",
        "the limit is 2,000",
    ),
    case(
        "speak_emoji_kept",
        lambda w, j: spoken(w, "🎉🔥 hello 👋🏽 👨‍👩‍👧"),
        "voice: 🎉🔥 hello 👋🏽 👨‍👩‍👧",
        new_jobs=1,
    ),
    case(
        "speak_rtl_text_without_direction_overrides",
        lambda w, j: spoken(w, "\u202eمرحبا بالعالم\u202c"),
        "voice: مرحبا بالعالم",
        new_jobs=1,
    ),
    case(
        "speak_zero_width_inside_word_dropped",
        lambda w, j: spoken(w, "he\u200bl\u200blo"),
        "voice: hello",
        new_jobs=1,
    ),
    # markup and mention injection in what the bot echoes
    case(
        "transcript_with_telegram_html",
        lambda w, j: transcript_of(w, '<b>bold</b> <a href="tg://user?id=1">x</a>'),
        "&lt;b&gt;bold&lt;/b&gt;",
        new_jobs=1,
    ),
    case(
        "transcript_with_mentions",
        lambda w, j: transcript_of(w, "@everyone @here <@&123> <@!42>"),
        "&lt;@&amp;123&gt;",
        new_jobs=1,
    ),
    case(
        "transcript_with_markdown_link",
        lambda w, j: transcript_of(w, "[click](https://evil.example) *bold* `code`"),
        "[click](https://evil.example)",
        new_jobs=1,
    ),
    case(
        "status_argument_with_html",
        lambda w, j: command(w, "/status <b>x</b>"),
        "&lt;b&gt;x&lt;/b&gt;",
        "is not a job id",
    ),
    case(
        "settings_value_with_html",
        lambda w, j: command(w, "/settings language <script>"),
        "&lt;script&gt;",
        "is not a language I know",
    ),
    # /status job ids
    case(
        "status_unknown_id",
        lambda w, j: command(w, "/status zzzzzz"),
        "No job zzzzzz in this chat.",
    ),
    case(
        "status_malformed_id",
        lambda w, j: command(w, "/status ../../etc/passwd"),
        "is not a job id",
        "Job ids look like",
    ),
    case(
        "status_overlong_id",
        lambda w, j: command(w, "/status " + "a" * 100),
        "is not a job id",
    ),
    case("status_emoji_id", lambda w, j: command(w, "/status 🎉"), "is not a job id"),
    case(
        "status_other_chats_job",
        lambda w, j: command(w, f"/status {j.id}", chat=OTHER),
        "No job {} in this chat.",
    ),
    # commands with wrong arguments
    case(
        "language_not_a_code",
        lambda w, j: command(w, "/language klingon-warrior-speak"),
        "is not a language I know",
    ),
    case("diarize_not_a_switch", lambda w, j: command(w, "/diarize maybe"), "takes on or off"),
    case(
        "autotranscribe_not_a_switch",
        lambda w, j: command(w, "/autotranscribe sometimes"),
        "takes on or off",
    ),
    case("voice_name_injection", lambda w, j: command(w, "/voice @everyone"), "A voice name is"),
    case(
        "settings_unknown_name",
        lambda w, j: command(w, "/settings colour blue"),
        "There is no setting called 'colour'",
    ),
    case(
        "settings_name_without_value",
        lambda w, j: command(w, "/settings language"),
        "language needs a value",
    ),
]


async def _earlier_job(w: World) -> Job:
    message = w.tg.send_voice(USER, USER, tone(1.0, 523.0), duration=1)
    job_id = placeholder_job_id(await w.reply_to(message))
    return await w.delivered(job_id)


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
async def test_bad_input_gets_clear_answer_and_nothing_breaks(tmp_path: Path, bad: Case) -> None:
    async with running(tmp_path, **bad.sections) as w:
        earlier = await _earlier_job(w)
        answer = await bad.act(w, earlier)
        for expected in bad.expect:
            assert expected.replace("{}", earlier.id) in answer, answer
        assert "something went wrong" not in answer.lower()
        jobs = await w.core.service.recent_jobs("telegram", str(USER), limit=50)
        assert len(jobs) == 1 + bad.new_jobs, [j.id for j in jobs]
        # The bot keeps working: a later good request is answered in full.
        later = await voice(w, tone(0.5, 880.0))
        assert "Fake transcript of" in later, later
        # Nothing stored was lost: the earlier job and its transcript are intact.
        kept = await w.core.store.get(earlier.id)
        assert kept is not None and kept.delivered
        assert kept.transcript is not None and kept.transcript == earlier.transcript


CONFIG_CASES = {
    "concurrency_not_int": ({"jobs": {"concurrency": "many"}}, "jobs.concurrency: expected int"),
    "timeout_not_number": (
        {"providers": {"nanogpt": {"timeout": "fast"}}},
        "providers.nanogpt.timeout: expected",
    ),
    "limit_negative": (
        {"limits": {"jobs_per_minute": -1}},
        "limits.jobs_per_minute: must be 0 (no limit) or more",
    ),
    "section_not_mapping": ({"telegram": ["token"]}, "telegram: expected a mapping, got list"),
    "admins_not_list": (
        {"access": {"admins": "telegram:user:1"}},
        "access.admins: expected a list",
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_bad_config_names_the_key_and_touches_nothing(tmp_path: Path, name: str) -> None:
    change, expected = CONFIG_CASES[name]
    data = config_dict(tmp_path)
    for section, values in change.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            merged = dict(data[section])
            for key, value in values.items():
                old = merged.get(key)
                merged[key] = {**old, **value} if isinstance(old, dict) else value
            data[section] = merged
        else:
            data[section] = values
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={}, platforms=config_readers())
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert not (tmp_path / "voicebot.sqlite3").exists()  # refused before opening anything
