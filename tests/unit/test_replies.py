"""Platform-neutral reply building: escaping-aware splitting, files past the threshold, failures."""

from __future__ import annotations

import html
from typing import Any

from bot.chat.replies import fit_chunks, progress_text, transcript_reply
from bot.model.job import Job, JobKind, JobState
from bot.model.speech import Origin, Segment, Transcript


def stt_job(transcript: Transcript | None, state: JobState = JobState.COMPLETED, **kw: Any) -> Job:
    return Job(
        id="ab12cd",
        kind=kw.pop("kind", JobKind.STT),
        origin=Origin("telegram", "1", "2"),
        provider="nanogpt",
        model="Elevenlabs-STT",
        options=kw.pop("options", {"diarize": False}),
        state=state,
        created_at=0.0,
        updated_at=0.0,
        deadline_at=100.0,
        result=transcript.to_dict() if transcript else None,
        **kw,
    )


def test_fit_chunks_respects_limit_after_escaping() -> None:
    text = "<b>" * 500 + " tail"
    chunks = fit_chunks(text, 100, escape=html.escape)
    assert all(len(c) <= 100 for c in chunks)
    assert html.unescape("".join(chunks)).replace(" ", "") == text.replace(" ", "")


def test_fit_chunks_counts_utf16_units() -> None:
    chunks = fit_chunks("😀 " * 100, 50, utf16=True)
    assert all(len(c.encode("utf-16-le")) // 2 <= 50 for c in chunks)
    assert sum(c.count("😀") for c in chunks) == 100


def test_transcript_reply_short_diarized() -> None:
    t = Transcript(
        text="hi there",
        segments=(Segment("hi", 0, 1, "spk_a"), Segment("there", 1, 2, "spk_b")),
        diarized=True,
    )
    reply = transcript_reply(stt_job(t, options={"diarize": True}), limit=4096, max_messages=3)
    assert reply.files == ()
    assert reply.messages == ("Speaker 1: hi\n\nSpeaker 2: there",)


def test_transcript_reply_long_becomes_txt_and_srt() -> None:
    words = " ".join(f"word{i}" for i in range(3000))
    t = Transcript(text=words, segments=(Segment(words, 0.0, 600.0, None),))
    reply = transcript_reply(stt_job(t), limit=2000, max_messages=3)
    assert len(reply.messages) == 1 and "attached" in reply.messages[0]
    names = [f.filename for f in reply.files]
    assert names == ["transcript-ab12cd.txt", "transcript-ab12cd.srt"]
    assert reply.files[0].data.decode().strip() == words


def test_transcript_reply_split_under_threshold() -> None:
    words = " ".join(f"w{i}" for i in range(1000))
    reply = transcript_reply(stt_job(Transcript(text=words)), limit=2000, max_messages=3)
    assert len(reply.messages) == 3 and all(len(m) <= 2000 for m in reply.messages)
    assert " ".join(reply.messages).split() == words.split()


def test_transcript_reply_empty_and_failed() -> None:
    empty = transcript_reply(stt_job(Transcript(text="  ")), limit=100, max_messages=3)
    assert "No speech" in empty.messages[0]
    failed = stt_job(None, JobState.FAILED, error="The speech service is unavailable right now.")
    assert "unavailable" in transcript_reply(failed, limit=100, max_messages=3).messages[0]


def test_progress_text_follows_state() -> None:
    queued = stt_job(None, JobState.QUEUED)
    assert progress_text(queued) == "🎙 Queued… job ab12cd"
    running = stt_job(None, JobState.SUBMITTED, queue_position=3)
    assert progress_text(running) == "🎙 Transcribing… job ab12cd (queue position 3)"


def test_progress_text_split_and_text_jobs_in_the_readers_language() -> None:
    from bot.text import text_for

    de = text_for("de")
    split = stt_job(None, JobState.SUBMITTED, ticket={"split": 4}, progress=0.5)
    assert progress_text(split, de) == "🎙 Wird transkribiert… Teil 3 von 4, Auftrag ab12cd"
    summary = stt_job(None, JobState.SUBMITTED, kind=JobKind.TEXT, options={"action": "summary"})
    assert progress_text(summary, text_for("uk")) == "📝 Складаю стислий виклад… завдання ab12cd"


def test_text_job_toast_and_buttons_in_the_readers_language() -> None:
    from bot.chat.replies import SUMMARIZE_BUTTON, TRANSLATE_BUTTON, text_job_toast
    from bot.text import text_for

    fr = text_for("fr")
    job = stt_job(None, JobState.QUEUED, kind=JobKind.TEXT, options={"action": "translate"})
    assert text_job_toast(job, fresh=True, tr=fr) == "Traduction en préparation (tâche ab12cd)."
    assert text_job_toast(job, fresh=True) == "Working on the translation (job ab12cd)."
    zh = text_for("zh-HK")
    assert (zh.render(SUMMARIZE_BUTTON), zh.render(TRANSLATE_BUTTON)) == ("📝 摘要", "🌐 翻譯")
