"""What to send back for a job, platform-neutral: progress lines, transcript messages or files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot import render
from bot.jobs.models import Job, JobKind, JobState
from bot.status import progress_percent, user_state


@dataclass(frozen=True, slots=True)
class FileReply:
    """A document to attach (a long transcript as .txt, subtitles as .srt)."""

    filename: str
    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class TranscriptReply:
    """The messages (already escaped and split to the platform's limit) and files to send."""

    messages: tuple[str, ...]
    files: tuple[FileReply, ...] = ()


def _identity(text: str) -> str:
    return text


def fit_chunks(
    text: str,
    limit: int,
    *,
    escape: Callable[[str], str] = _identity,
    utf16: bool = False,
) -> list[str]:
    """Split ``text`` at word boundaries so that each *escaped* chunk fits in ``limit``.

    Escaping can lengthen a chunk (``<`` becomes ``&lt;``), so a chunk that no longer fits is split
    again with a proportionally smaller budget.
    """
    measure: Callable[[str], int] = (lambda s: len(s.encode("utf-16-le")) // 2) if utf16 else len
    out: list[str] = []
    for chunk in render.split_message(text, limit, utf16=utf16):
        escaped = escape(chunk)
        if measure(escaped) <= limit or len(chunk) <= 1:
            out.append(escaped)
            continue
        smaller = max(1, int(limit * limit / measure(escaped)) - 1)
        out.extend(fit_chunks(chunk, smaller, escape=escape, utf16=utf16))
    return [c for c in out if c]


FILE_UNAVAILABLE = (
    "I couldn't fetch this file from Telegram (it may have expired or be too big). "
    "Please send it again."
)
STUCK = "The speech service has been processing this for too long; the job was stopped."


def duration_text(seconds: float) -> str:
    """``45 seconds``, ``1 minute``, ``2 minutes 30 seconds``, ``1 hour 5 minutes``."""
    total = max(1, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = (
        [(hours, "hour"), (minutes, "minute")] if hours else [(minutes, "minute"), (secs, "second")]
    )
    words = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return " ".join(words)


def deadline_text(seconds: float) -> str:
    """Why a job that ran out of time was stopped, with the deadline it had."""
    span = duration_text(seconds)
    return f"The speech service did not finish within {span}, so the job was stopped."


def retrying_text(reason: str) -> str:
    """A queued job whose provider could not take it: the reason, and that it is retried."""
    return f"{reason} It will be retried automatically."


CANCEL_BUTTON = "✖ Cancel"
CANCEL_DONE_TOAST = "Cancelled."
CANCEL_NOTHING = "You have no queued or running job in this chat."
CANCEL_NOT_YOURS = "Only the person who started a job, or a chat admin, can cancel it."


def cancel_unknown(job_id: str) -> str:
    """/cancel with an id this chat does not have."""
    return f"No job {job_id} in this chat. Use /status to list this chat's jobs."


def cancel_too_late(job_id: str) -> str:
    """/cancel of a job that already finished (or was cancelled)."""
    return f"Job {job_id} has already finished, so there is nothing to cancel."


def cancelled_text(job: Job, *, sent: bool) -> str:
    """The reply to a successful cancel; a job already sent may still be charged."""
    text = f"✖ Cancelled job {job.id}."
    if sent:
        text += " It had already been sent to the speech service, so it may still be charged."
    return text


def progress_text(job: Job) -> str:
    """One line for the placeholder message while a job runs (plain text)."""
    state = user_state(job)
    if job.kind is JobKind.STT:
        icon, verb = "🎙", "Transcribing"
    else:
        icon, verb = "🔊", "Synthesizing"
    if state == "queued":
        line = f"{icon} Queued… job {job.id}"
    elif state in ("transcribing", "synthesizing"):
        percent = progress_percent(job)
        shown = f" {percent} %" if percent is not None else ""
        line = f"{icon} {verb}…{shown} job {job.id}"
    elif state == "done":
        line = f"✅ Done: job {job.id}"
    elif state == "cancelled":
        line = f"✖ Cancelled: job {job.id}"
    else:
        line = f"❌ Failed: job {job.id}: {job.error or 'unknown error'}"
    if job.queue_position is not None and not job.state.terminal:
        line += f" (queue position {job.queue_position})"
    if not job.state.terminal and job.error:
        line += f"\n{job.error}"  # a retry note (see JobWorker._notify); never stored on the row
    return line


def failure_text(job: Job) -> str:
    """The final message of a failed job (plain text)."""
    what = "Transcription" if job.kind is JobKind.STT else "Speech"
    return f"❌ {what} failed (job {job.id}): {job.error or 'unknown error'}"


def transcript_reply(
    job: Job,
    *,
    limit: int,
    max_messages: int,
    escape: Callable[[str], str] = _identity,
    utf16: bool = False,
) -> TranscriptReply:
    """Messages for a finished transcription job: split text, or files past ``max_messages``.

    Args:
        job: a COMPLETED or FAILED speech-to-text job.
        limit: the platform's message length limit (Telegram 4096 UTF-16 units, Discord 2000).
        max_messages: more parts than this are sent as a ``.txt`` (+ ``.srt`` with timings).
        escape: the platform's escaping for the parse mode it uses.
        utf16: measure length in UTF-16 code units (Telegram).
    """
    if job.state is JobState.FAILED or job.transcript is None:
        return TranscriptReply((escape(failure_text(job)),))
    transcript = job.transcript
    diarize = bool(job.options.get("diarize"))
    text = render.render_transcript(transcript, diarize=diarize).strip()
    if not text:
        return TranscriptReply((escape("🔇 No speech detected in this audio."),))
    parts = fit_chunks(text, limit, escape=escape, utf16=utf16)
    if len(parts) <= max_messages:
        return TranscriptReply(tuple(parts))
    files = [FileReply(f"transcript-{job.id}.txt", text.encode() + b"\n", "text/plain")]
    srt = render.to_srt(transcript, diarize=diarize)
    if srt:
        files.append(FileReply(f"transcript-{job.id}.srt", srt.encode(), "application/x-subrip"))
    words = len(text.split())
    note = f"📄 The transcript is long ({words:,} words), so it is attached as a file."
    return TranscriptReply((escape(note),), tuple(files))
