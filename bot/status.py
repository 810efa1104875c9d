"""Plain-text job status for /status and the CLI: state, age, provider, queue position, cost."""

from __future__ import annotations

from collections.abc import Sequence

from bot.jobs.models import Job, JobKind, JobState


def user_state(job: Job) -> str:
    """The words a user sees for a job's state."""
    if job.state in (JobState.QUEUED, JobState.SUBMITTING):
        return "queued"
    if job.state is JobState.SUBMITTED:
        return "transcribing" if job.kind is JobKind.STT else "synthesizing"
    if job.state is JobState.COMPLETED:
        return "done"
    if job.state is JobState.CANCELLED:
        return "cancelled"
    return "failed"


def format_age(seconds: float) -> str:
    """``42s``, ``5m``, ``3h 10m``, ``2d``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{seconds // 86400}d"


def format_cost(job: Job) -> str | None:
    """The provider-reported cost, when known."""
    if job.cost is None:
        return None
    return f"{job.cost:.4f} {job.currency}" if job.currency else f"{job.cost:.4f}"


def progress_percent(job: Job) -> int | None:
    """Whole percent of the work a running job's provider reports done (None when unmeasured)."""
    if job.state is not JobState.SUBMITTED or job.progress is None:
        return None
    return max(0, min(99, int(job.progress * 100)))


def progress_eta(job: Job, now: float) -> float | None:
    """When a running job should finish, extrapolated from its reported progress."""
    if job.progress is None or job.progress < 0.05 or job.submitted_at is None:
        return None
    elapsed = max(0.0, now - job.submitted_at)
    return now + elapsed * (1 - job.progress) / job.progress


def render_job(job: Job, now: float, *, eta: float | None = None) -> str:
    """Several lines describing one job."""
    kind = "transcription" if job.kind is JobKind.STT else "speech"
    lines = [f"Job {job.id} ({kind}): {user_state(job)}"]
    lines.append(f"age: {format_age(now - job.created_at)}")
    lines.append(f"provider: {job.provider} / {job.model}")
    if job.input_duration:
        lines.append(f"audio: {format_age(job.input_duration)}")
    if job.queue_position is not None and not job.state.terminal:
        lines.append(f"queue position: {job.queue_position}")
    percent = progress_percent(job)
    if percent is not None:
        lines.append(f"progress: {percent} %")
        eta = progress_eta(job, now) or eta
    if eta is not None and not job.state.terminal:
        lines.append(f"expected in: about {format_age(max(eta - now, 1))}")
    transcript = job.transcript
    if transcript is not None and transcript.language and job.options.get("language") == "auto":
        lines.append(f"language: {transcript.language} (detected)")
    cost = format_cost(job)
    if cost:
        lines.append(f"cost: {cost}")
    if job.state is JobState.FAILED and job.error:
        lines.append(f"reason: {job.error}")
    if job.delivery_error:
        lines.append("reply could not be delivered")
    return "\n".join(lines)


def render_job_list(jobs: Sequence[Job], now: float) -> str:
    """One line per job, newest first; a hint when there are none."""
    if not jobs:
        return "No jobs in this chat yet. Send a voice message or use /speak."
    lines = ["Recent jobs:"]
    for job in jobs:
        kind = "STT" if job.kind is JobKind.STT else "TTS"
        line = f"{job.id} {kind} {user_state(job)}, {format_age(now - job.created_at)} ago"
        if job.queue_position is not None and not job.state.terminal:
            line += f", queue #{job.queue_position}"
        percent = progress_percent(job)
        if percent is not None:
            line += f", {percent} %"
        lines.append(line)
    lines.append("Use /status <id> for details.")
    return "\n".join(lines)
