"""What a link's job shows: its download while it runs, and the source of its transcript."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.model.job import ACTIVE_STATES, Job, JobState
from bot.text import ENGLISH, Duration, Size, Text


def link_of(job: Job) -> Mapping[str, Any] | None:
    """What the link a job transcribes said of itself (``options["link"]``), or None."""
    link = job.options.get("link")
    return link if isinstance(link, Mapping) else None


def downloading(job: Job) -> bool:
    """Whether ``job`` is a link's whose audio is still to be downloaded (or on its way)."""
    link = link_of(job)
    return link is not None and not link.get("downloaded") and job.state in ACTIVE_STATES


def download_progress(job: Job, tr: Text = ENGLISH) -> str | None:
    """``34 % (12.1 of 35.0 MB)`` while a link's audio arrives (``12.1 MB`` when its size is
    unknown); None before the first bytes."""
    done = job.input_bytes
    if not downloading(job) or job.state is not JobState.SUBMITTING or not done:
        return None
    if not job.progress:
        return tr.gettext("{done} so far", done=Size(done))
    total = int(done / job.progress)
    percent = max(0, min(100, int(job.progress * 100)))
    return tr.gettext(
        "{percent} % ({done} of {total})", percent=percent, done=Size(done), total=Size(total)
    )


def downloading_line(job: Job, tr: Text = ENGLISH) -> str:
    """The placeholder's line while a link's audio is downloaded."""
    shown = download_progress(job, tr)
    progress = " " + shown + "," if shown else ""
    return tr.gettext("⬇️ Downloading the link…{progress} job {id}", progress=progress, id=job.id)


def source_header(job: Job, tr: Text = ENGLISH) -> str | None:
    """``🔗 Lecture 3 (1 hr 5 min)`` and the link on the next line, above a link's
    transcript (None for a recording that was sent)."""
    link = link_of(job)
    if link is None:
        return None
    url = str(link.get("url") or "")
    title = str(link.get("title") or "").strip()
    seconds = job.input_duration or link.get("duration")
    name = title or url
    if seconds:
        name = tr.gettext("{title} ({length})", title=name, length=Duration(float(seconds)))
    return f"🔗 {name}\n{url}" if title else f"🔗 {name}"
