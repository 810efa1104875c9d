"""Plain-text job status for /status and the CLI: state, age, provider, queue position, cost."""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat.sources import download_progress, downloading
from bot.model.job import Job, JobKind, JobState
from bot.text import ENGLISH, Text, msg


def user_state(job: Job) -> str:
    """The state a user sees, as a stable key (queued, downloading, transcribing, done...)."""
    if downloading(job):
        return "downloading"
    if job.state in (JobState.QUEUED, JobState.SUBMITTING):
        return "queued"
    if job.state is JobState.SUBMITTED:
        return _RUNNING[job.kind]
    if job.state is JobState.COMPLETED:
        return "done"
    if job.state is JobState.CANCELLED:
        return "cancelled"
    return "failed"


_RUNNING = {JobKind.STT: "transcribing", JobKind.TTS: "synthesizing", JobKind.TEXT: "writing"}

# The words for each key of user_state and kind_name, each written out for the catalog's extractor.
_WORDS = {
    word.id: word
    for word in (
        msg("queued"),
        msg("downloading"),
        msg("transcribing"),
        msg("synthesizing"),
        msg("writing"),
        msg("done"),
        msg("cancelled"),
        msg("failed"),
        msg("transcription"),
        msg("speech"),
        msg("summary"),
        msg("translation"),
    )
}


def state_words(job: Job, tr: Text = ENGLISH) -> str:
    """The words for :func:`user_state` in the reader's language."""
    return tr.render(_WORDS[user_state(job)])


def kind_name(job: Job) -> str:
    """What a job makes, as a stable key: transcription, speech, summary, translation."""
    if job.kind is JobKind.TEXT:
        return "summary" if job.options.get("action") == "summary" else "translation"
    return "transcription" if job.kind is JobKind.STT else "speech"


def kind_words(job: Job, tr: Text = ENGLISH) -> str:
    """:func:`kind_name` in the reader's language."""
    return tr.render(_WORDS[kind_name(job)])


def format_age(seconds: float, tr: Text = ENGLISH) -> str:
    """``42 sec``, ``5 min``, ``3 hr 10 min``, ``2 days`` in the reader's language."""
    return tr.duration(seconds)


def format_cost(job: Job, tr: Text = ENGLISH) -> str | None:
    """The provider-reported cost, when known."""
    if job.cost is None:
        return None
    amount = tr.decimal(job.cost, 4)
    return f"{amount} {job.currency}" if job.currency else amount


def progress_percent(job: Job) -> int | None:
    """Whole percent of the work a running job's provider reports done (None when unmeasured)."""
    if job.state is not JobState.SUBMITTED or job.progress is None:
        return None
    return max(0, min(99, int(job.progress * 100)))


def part_progress(job: Job, tr: Text = ENGLISH) -> str | None:
    """ "part 3 of 7" while a long recording's parts run (None for a job that was not split)."""
    total = int((job.ticket or {}).get("split", 0))
    if total < 2 or job.state is not JobState.SUBMITTED:
        return None
    done = round((job.progress or 0.0) * total)
    return tr.gettext("part {n} of {total}", n=min(total, done + 1), total=total)


def progress_eta(job: Job, now: float) -> float | None:
    """When a running job should finish, extrapolated from its reported progress."""
    if job.progress is None or job.progress < 0.05 or job.submitted_at is None:
        return None
    elapsed = max(0.0, now - job.submitted_at)
    return now + elapsed * (1 - job.progress) / job.progress


def render_job(job: Job, now: float, *, eta: float | None = None, tr: Text = ENGLISH) -> str:
    """Several lines describing one job."""
    lines = [
        tr.gettext(
            "Job {id} ({kind}): {state}",
            id=job.id,
            kind=kind_words(job, tr),
            state=state_words(job, tr),
        )
    ]
    lines.append(tr.gettext("age: {age}", age=format_age(now - job.created_at, tr)))
    lines.append(
        tr.gettext("provider: {provider} / {model}", provider=job.provider, model=job.model)
    )
    if job.input_duration:
        lines.append(tr.gettext("audio: {length}", length=format_age(job.input_duration, tr)))
    if job.queue_position is not None and not job.state.terminal:
        lines.append(tr.gettext("queue position: {position}", position=job.queue_position))
    fetched = download_progress(job, tr)
    if fetched is not None:
        lines.append(tr.gettext("download: {progress}", progress=fetched))
    percent = progress_percent(job)
    part = part_progress(job, tr)
    if part is not None:
        lines.append(tr.gettext("progress: {part}", part=part))
    elif percent is not None:
        lines.append(tr.gettext("progress: {percent} %", percent=percent))
        eta = progress_eta(job, now) or eta
    if eta is not None and not job.state.terminal:
        left = format_age(max(eta - now, 1), tr)
        lines.append(tr.gettext("expected in: about {duration}", duration=left))
    transcript = job.transcript
    if transcript is not None and transcript.language and job.options.get("language") == "auto":
        name = tr.language_name(transcript.language)
        lines.append(tr.gettext("language: {language} (detected)", language=name))
    cost = format_cost(job, tr)
    if cost:
        lines.append(tr.gettext("cost: {cost}", cost=cost))
    if job.state is JobState.FAILED and job.error:
        lines.append(tr.gettext("reason: {reason}", reason=tr.render(job.error)))
    if job.delivery_error:
        lines.append(tr.gettext("reply could not be delivered"))
    return "\n".join(lines)


def render_job_list(jobs: Sequence[Job], now: float, tr: Text = ENGLISH) -> str:
    """One line per job, newest first; a hint when there are none."""
    if not jobs:
        return tr.gettext("No jobs in this chat yet. Send a voice message or use /speak.")
    lines = [tr.gettext("Recent jobs:")]
    for job in jobs:
        kind = {
            JobKind.STT: tr.gettext("STT"),
            JobKind.TTS: tr.gettext("TTS"),
            JobKind.TEXT: tr.gettext("TEXT"),
        }[job.kind]
        age = format_age(now - job.created_at, tr)
        line = tr.gettext(
            "{id} {kind} {state}, {age} ago",
            id=job.id,
            kind=kind,
            state=state_words(job, tr),
            age=age,
        )
        if job.queue_position is not None and not job.state.terminal:
            line += tr.gettext(", queue #{position}", position=job.queue_position)
        percent = progress_percent(job)
        part = part_progress(job, tr)
        if part is not None:
            line += f", {part}"
        elif percent is not None:
            line += f", {tr.number(percent)} %"
        lines.append(line)
    lines.append(tr.gettext("Use /status <id> for details."))
    return "\n".join(lines)
