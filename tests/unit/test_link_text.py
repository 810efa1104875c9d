"""What a link's job says: its download in the placeholder and /status (percent and sizes), and
the source above its transcript and in the .txt, in the reader's language."""

from __future__ import annotations

from dataclasses import replace

from bot.chat import replies, status
from bot.model.job import Job, JobState
from bot.model.speech import Transcript
from bot.text import text_for
from testkit.support import ORIGIN, a_job

LINK = {"url": "https://example.org/talk", "kind": "ytdl", "title": "Lecture 3", "duration": 3900.0}


def downloading(**changes: object) -> Job:
    job = a_job(ORIGIN, JobState.SUBMITTING)
    return replace(job, options={"link": LINK}, input_bytes=12_100_000, progress=0.3457, **changes)


def test_link_text_download_progress_with_percent_and_sizes() -> None:
    job = downloading()
    assert replies.progress_text(job) == (
        "⬇️ Downloading the link… 34 % (11.5 MB of 33.4 MB), job ab12cd"
    )
    assert replies.progress_text(job, text_for("de")) == (
        "⬇️ Link wird heruntergeladen… 34 % (11,5 MB von 33,4 MB), Auftrag ab12cd"
    )
    unsized = replies.progress_text(replace(job, progress=None))
    assert unsized == "⬇️ Downloading the link… 11.5 MB so far, job ab12cd"
    # Stored, not started yet (or the adapter's preview of it): downloading, nothing counted.
    waiting = replace(job, state=JobState.QUEUED, input_bytes=None, progress=None)
    assert replies.progress_text(waiting) == "⬇️ Downloading the link… job ab12cd"
    assert status.user_state(waiting) == "downloading"
    lines = status.render_job(job, 100.0).splitlines()
    assert lines[0] == "Job ab12cd (transcription): downloading"
    assert "download: 34 % (11.5 MB of 33.4 MB)" in lines


def test_link_text_reply_names_the_source_in_the_message_and_the_txt() -> None:
    t = Transcript(text="Hello everyone and welcome.", language="en")
    done = replace(
        a_job(ORIGIN, JobState.COMPLETED),
        options={"link": {**LINK, "downloaded": True}, "output": "both"},
        result=t.to_dict(),
        input_duration=3912.0,
    )
    reply = replies.transcript_reply(done, limit=4096, max_messages=3)
    source = "🔗 Lecture 3 (1 hour 5 minutes)\nhttps://example.org/talk"
    assert reply.messages == (f"{source}\n\nHello everyone and welcome.",)
    assert reply.files[0].data.decode() == f"{source}\n\nHello everyone and welcome.\n"
    untitled = replace(done, options={"link": {**LINK, "title": None}})
    [message] = replies.transcript_reply(untitled, limit=4096, max_messages=3).messages
    assert message.startswith("🔗 https://example.org/talk (1 hour 5 minutes)\n\nHello")
    uploaded = replace(done, options={})
    [plain] = replies.transcript_reply(uploaded, limit=4096, max_messages=3).messages
    assert plain == "Hello everyone and welcome."
