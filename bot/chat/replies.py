"""What to send back for a job, platform-neutral: progress lines, transcript messages or files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from babel.core import get_global

from bot.chat import render
from bot.chat.sources import downloading_line, source_header
from bot.chat.status import kind_name, part_progress, progress_percent, user_state
from bot.model.job import Job, JobKind, JobState
from bot.text import ENGLISH, Duration, Msg, Text, decode, encode, msg
from bot.text.translator import standard_code


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


FILE_UNAVAILABLE = msg(
    "I couldn't fetch this file from Telegram (it may have expired or be too big). "
    "Please send it again."
)
STUCK = msg("The speech service has been processing this for too long; the job was stopped.")


def provider_gone_text(provider: str) -> str:
    """Why a job whose provider instance left the config (renamed or removed while the job was
    queued or running) was stopped (encoded for the job row)."""
    return encode(
        msg(
            "The speech service of this job ({provider}) is no longer set up on this bot; please "
            "send it again.",
            provider=provider,
        )
    )


def deadline_text(seconds: float) -> str:
    """Why a job that ran out of time was stopped, with the deadline it had (encoded for the
    job row: each reader sees it in their language)."""
    return encode(
        msg(
            "The speech service did not finish within {duration}, so the job was stopped.",
            duration=Duration(max(1, round(seconds))),
        )
    )


def retrying_text(reason: Msg | str) -> str:
    """A queued job whose provider could not take it: the reason, and that it is retried
    (encoded: the placeholder shows it in the requester's language)."""
    return encode(msg("{reason} It will be retried automatically.", reason=decode_reason(reason)))


def decode_reason(reason: Msg | str) -> Msg:
    """A reason given as a message or as its stored form."""
    return reason if isinstance(reason, Msg) else decode(reason)


CANCEL_BUTTON = msg("✖ Cancel")
CANCEL_DONE_TOAST = msg("Cancelled.")
CANCEL_NOTHING = msg("You have no queued or running job in this chat.")
CANCEL_NOT_YOURS = msg("Only the person who started a job, or a chat admin, can cancel it.")


def cancel_unknown(job_id: str) -> Msg:
    """/cancel with an id this chat does not have."""
    return msg("No job {id} in this chat. Use /status to list this chat's jobs.", id=job_id)


def cancel_too_late(job_id: str) -> Msg:
    """/cancel of a job that already finished (or was cancelled)."""
    return msg("Job {id} has already finished, so there is nothing to cancel.", id=job_id)


def cancelled_text(job: Job, *, sent: bool) -> Msg:
    """The reply to a successful cancel; a job already sent may still be charged."""
    if sent:
        return msg(
            "✖ Cancelled job {id}. It had already been sent to the speech service, so it may "
            "still be charged.",
            id=job.id,
        )
    return msg("✖ Cancelled job {id}.", id=job.id)


def progress_text(job: Job, tr: Text = ENGLISH) -> str:
    """One line for the placeholder message while a job runs (plain text)."""
    state = user_state(job)
    kind = kind_name(job)
    icon = {"transcription": "🎙", "speech": "🔊", "summary": "📝", "translation": "🌐"}[kind]
    if state == "downloading":
        line = downloading_line(job, tr)
    elif state == "queued":
        line = tr.gettext("{icon} Queued… job {id}", icon=icon, id=job.id)
    elif state in ("transcribing", "synthesizing", "writing"):
        percent = progress_percent(job)
        shown = f" {tr.number(percent)} %" if percent is not None else ""
        part = part_progress(job, tr)
        shown = f" {part}," if part else shown
        line = _doing(kind, tr).format(icon=icon, percent=shown, id=job.id)
    elif state == "done":
        line = tr.gettext("✅ Done: job {id}", id=job.id)
    elif state == "cancelled":
        line = tr.gettext("✖ Cancelled: job {id}", id=job.id)
    else:
        line = tr.gettext("❌ Failed: job {id}: {reason}", id=job.id, reason=_reason(job, tr))
    if job.queue_position is not None and not job.state.terminal:
        line += tr.gettext(" (queue position {position})", position=job.queue_position)
    if not job.state.terminal and job.error:
        line += f"\n{tr.render(job.error)}"  # a retry note (JobWorker._notify), never stored
    return line


def _doing(kind: str, tr: Text) -> str:
    """The running line's template for a kind (``{icon}``, ``{percent}``, ``{id}`` left open:
    the percent is already in locale form)."""
    keep = {"icon": "{icon}", "percent": "{percent}", "id": "{id}"}
    if kind == "transcription":
        return tr.gettext("{icon} Transcribing…{percent} job {id}", **keep)
    if kind == "speech":
        return tr.gettext("{icon} Synthesizing…{percent} job {id}", **keep)
    if kind == "summary":
        return tr.gettext("{icon} Summarizing…{percent} job {id}", **keep)
    return tr.gettext("{icon} Translating…{percent} job {id}", **keep)


def _reason(job: Job, tr: Text) -> str:
    if job.kind is JobKind.TEXT and job.error_code == "interrupted":
        return tr.render(TEXT_INTERRUPTED)  # the generic sentence speaks of audio and speech
    return tr.render(job.error) if job.error else tr.gettext("unknown error")


def failure_text(job: Job, tr: Text = ENGLISH) -> str:
    """The final message of a failed job (plain text)."""
    reason = _reason(job, tr)
    kind = kind_name(job)
    if kind == "transcription":
        return tr.gettext("❌ Transcription failed (job {id}): {reason}", id=job.id, reason=reason)
    if kind == "speech":
        return tr.gettext("❌ Speech failed (job {id}): {reason}", id=job.id, reason=reason)
    if kind == "summary":
        return tr.gettext("❌ Summary failed (job {id}): {reason}", id=job.id, reason=reason)
    return tr.gettext("❌ Translation failed (job {id}): {reason}", id=job.id, reason=reason)


def detected_language(job: Job, tr: Text = ENGLISH) -> str | None:
    """``🇩🇪 German, detected``: when the language was left to the provider, it said which, and
    it is not the reader's own (an English reader is not told that English audio is English)."""
    transcript = job.transcript
    if transcript is None or not transcript.language or job.options.get("language") != "auto":
        return None
    code = standard_code(transcript.language) or transcript.language  # "english" from OpenAI
    if code.split("-")[0].lower() == tr.locale.language:
        return None
    return tr.gettext(
        "{flag} {language}, detected", flag=flag(code), language=tr.language_name(code)
    ).strip()


def flag(language: str) -> str:
    """The flag of the country most associated with ``language`` (CLDR likely subtags)."""
    try:
        likely = get_global("likely_subtags").get(language.split("-")[0].lower(), "")
    except (KeyError, ValueError):
        return ""
    territory = next((p for p in str(likely).split("_") if len(p) == 2 and p.isupper()), "")
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in territory)


def _clock_time(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def missing_part_text(
    index: int, total: int, start: float, duration: float, error: str | None, tr: Text = ENGLISH
) -> str:
    """The marked gap a stitched transcript shows where a part could not be transcribed."""
    span = f"{_clock_time(start)}–{_clock_time(start + duration)}"
    reason = tr.render(error) if error else tr.gettext("it failed")
    return tr.gettext(
        "[part {n} of {total} ({span}) is missing: {reason}]",
        n=index + 1,
        total=total,
        span=span,
        reason=reason,
    )


# Stored on the part row (encoded; without arguments the stored form is the English sentence).
INTERRUPTED_PART = encode(
    msg(
        "a restart interrupted it while it was being sent, so it may have been charged and was "
        "not sent again"
    )
)


def split_speakers_note(parts: int, tr: Text = ENGLISH) -> str:
    """Above a diarized transcript stitched from parts: speaker numbers restart per part."""
    return tr.gettext(
        "Note: this recording was transcribed in {parts} parts; speaker numbers restart in each "
        "part, so one person may appear under several numbers.",
        parts=parts,
    )


TEXT_INTERRUPTED = msg(
    "a restart interrupted it while it was with the chat model, so it may have been charged and "
    "was not sent again; press the button again to retry."
)
TEXT_UNAVAILABLE = msg("Summaries and translations are not set up on this bot.")


def no_transcript(job_id: str) -> Msg:
    """/summarize or /translate naming a job that is not a finished transcript here."""
    return msg("There is no finished transcript {job} in this chat.", job=job_id)


def text_usage(command: str) -> Msg:
    """How /summarize and /translate are used."""
    return msg(
        "Reply to a transcript with /{command} [language], or give its job id: "
        "/{command} ab12cd [language].",
        command=command,
    )


SUMMARIZE_BUTTON = msg("📝 Summarize")
TRANSLATE_BUTTON = msg("🌐 Translate")
ENGLISH_BUTTON = msg("🌐 Translate → English")
ENGLISH_ONLY = msg(
    "Only a translation into English is available on this bot: /translate en (or the button)."
)
RECORDING_GONE = msg(
    "The recording is no longer kept, so it cannot be translated now; send it again to get a "
    "translation."
)
_LANGUAGES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "ru": "Russian", "uk": "Ukrainian",
    "tr": "Turkish", "ar": "Arabic", "he": "Hebrew", "fa": "Persian", "hi": "Hindi",
    "ja": "Japanese", "ko": "Korean", "zh": "Chinese", "yue": "Cantonese", "id": "Indonesian",
    "vi": "Vietnamese", "th": "Thai", "sv": "Swedish", "da": "Danish", "no": "Norwegian",
    "fi": "Finnish", "cs": "Czech", "el": "Greek", "ro": "Romanian", "hu": "Hungarian",
}  # fmt: skip


def text_job_toast(job: Job, *, fresh: bool, tr: Text = ENGLISH) -> str:
    """The short answer to a Summarize/Translate press."""
    summary = kind_name(job) == "summary"
    if fresh:
        if summary:
            return tr.gettext("Working on the summary (job {id}).", id=job.id)
        return tr.gettext("Working on the translation (job {id}).", id=job.id)
    if job.state.terminal:
        if summary:
            return tr.gettext("The summary was already made: job {id}, above.", id=job.id)
        return tr.gettext("The translation was already made: job {id}, above.", id=job.id)
    if summary:
        return tr.gettext("The summary is already on its way: job {id}.", id=job.id)
    return tr.gettext("The translation is already on its way: job {id}.", id=job.id)


def language_name(code: str | None) -> str:
    """The name a chat model understands (English, for its prompt, not for a reader) for a
    platform language code (``en-US``, ``pt-br``, ``de``) or a name given as is; English when
    unknown."""
    if not code:
        return "English"
    base = code.strip().lower().replace("_", "-").split("-")[0]
    if base in _LANGUAGES:
        return _LANGUAGES[base]
    named = code.strip()
    return named.capitalize() if named.isalpha() and len(named) > 3 else "English"


def transcript_reply(
    job: Job,
    *,
    limit: int,
    max_messages: int,
    escape: Callable[[str], str] = _identity,
    utf16: bool = False,
    tr: Text = ENGLISH,
) -> TranscriptReply:
    """Messages for a finished transcription job: split text, or files past ``max_messages``.

    Args:
        job: a COMPLETED or FAILED speech-to-text job.
        limit: the platform's message length limit (Telegram 4096 UTF-16 units, Discord 2000).
        max_messages: more parts than this are sent as a ``.txt`` (+ ``.srt`` with timings).
        escape: the platform's escaping for the parse mode it uses.
        utf16: measure length in UTF-16 code units (Telegram).
        tr: the requester's language (:attr:`bot.model.speech.Origin.locale`).
    """
    if job.state is JobState.FAILED or job.transcript is None:
        return TranscriptReply((escape(failure_text(job, tr)),))
    transcript = job.transcript
    diarize = bool(job.options.get("diarize"))
    label = tr.gettext("Speaker {n}")
    text = render.render_transcript(transcript, diarize=diarize, label=label).strip()
    split = int((job.ticket or {}).get("split", 0))
    if text and diarize and transcript.diarized and split > 1:
        text = split_speakers_note(split, tr) + "\n\n" + text
    if not text:
        return TranscriptReply((escape(tr.gettext("🔇 No speech detected in this audio.")),))
    source = source_header(job, tr)  # a link's: title, length, link (in the .txt too)
    header = "\n".join(h for h in (source, detected_language(job, tr)) if h)
    shown = f"{header}\n\n{text}" if header else text
    parts = fit_chunks(shown, limit, escape=escape, utf16=utf16)
    output = str(job.options.get("output") or "messages")
    if len(parts) <= max_messages and output == "messages":
        return TranscriptReply(tuple(parts))
    name = "transcript" if job.kind is JobKind.STT else kind_name(job)
    txt = f"{source}\n\n{text}" if source else text
    files = [FileReply(f"{name}-{job.id}.txt", txt.encode() + b"\n", "text/plain")]
    srt = render.to_srt(transcript, diarize=diarize, label=label)
    if srt:
        files.append(FileReply(f"transcript-{job.id}.srt", srt.encode(), "application/x-subrip"))
    if len(parts) <= max_messages and output == "both":
        return TranscriptReply(tuple(parts), tuple(files))
    note = _file_note(job, len(render.render_plain(transcript).split()), output, tr)
    if header:
        note = f"{header}\n{note}"
    return TranscriptReply((escape(note),), tuple(files))


def _file_note(job: Job, words: int, output: str, tr: Text) -> str:
    """The line sent with a reply attached as a file (speaker labels are not words)."""
    kind = kind_name(job)
    if kind == "summary":
        return tr.ngettext(
            "📄 The summary is long ({n} word), so it is attached as a file.",
            "📄 The summary is long ({n} words), so it is attached as a file.",
            words,
        )
    if kind == "translation":
        return tr.ngettext(
            "📄 The translation is long ({n} word), so it is attached as a file.",
            "📄 The translation is long ({n} words), so it is attached as a file.",
            words,
        )
    if output == "messages":
        return tr.ngettext(
            "📄 The transcript is long ({n} word), so it is attached as a file.",
            "📄 The transcript is long ({n} words), so it is attached as a file.",
            words,
        )
    return tr.ngettext(
        "📄 The transcript ({n} word) is attached as a file.",
        "📄 The transcript ({n} words) is attached as a file.",
        words,
    )
