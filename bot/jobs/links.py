"""LinkRunner: a transcription of a shared link. Its audio is downloaded by the job (progress
shown, a cancel obeyed), its real length checked, and the job queued with it as if it had been
uploaded, in one guarded transition; from there the usual pipeline runs (whole or in parts)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.audio import codec as audio
from bot.audio import splitting
from bot.audio.pool import AudioPool
from bot.config.load import JobsConfig
from bot.jobs.split import split_plan
from bot.jobs.steps import Failure, JobSteps
from bot.links import (
    DownloadCancelled,
    Downloaded,
    LinkFetcher,
    LinkInfo,
    LinkRefused,
    ProgressFn,
)
from bot.model.errors import InputError
from bot.model.job import Blob, Job, JobKind
from bot.providers.base import SpeechToText
from bot.text import Msg, encode

_LOGGER = logging.getLogger(__name__)

_NOTIFY_BYTES = 10 * 1024 * 1024  # size unknown: the placeholder moves every 10 MB

LengthCheck = Callable[[Job, float], Awaitable[None]]
"""Raises :class:`InputError` (its sentence shown) when a link's recording, downloaded and
``seconds`` long, is over a limit (built by the service, which owns the limits)."""


def pending_download(job: Job) -> bool:
    """Whether ``job`` transcribes a link whose audio is not downloaded yet."""
    link = job.options.get("link")
    return job.kind is JobKind.STT and isinstance(link, Mapping) and not link.get("downloaded")


def link_info(job: Job) -> LinkInfo | None:
    """What was known of the link ``job`` transcribes before it was downloaded (None: not a
    link's job)."""
    link = job.options.get("link")
    return LinkInfo.from_dict(link) if isinstance(link, Mapping) else None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A link's audio, downloaded and checked: what its job is queued with again."""

    blob: Blob
    duration: float
    options: Mapping[str, Any]
    """The job's options from now on (``link.downloaded``, ``part_seconds`` when split)."""
    deadline_at: float


class LinkSteps(JobSteps, Protocol):
    """The steps of a link's download, besides the usual ones (each refused, None, when the
    job is no longer this step's: cancelled, or taken by another process)."""

    async def download_progress(
        self, job_id: str, done: int, share: float | None, now: float
    ) -> Job | None:
        """Record how much of a SUBMITTING link job's audio has arrived: ``done`` bytes, and
        the ``share`` of the whole when its size is known.

        Returns:
            The job as stored, or None when the download must stop (the job was cancelled).
        """
        ...

    async def downloaded(self, job_id: str, fetched: Fetched, now: float) -> Job | None:
        """SUBMITTING → QUEUED with the downloaded audio stored as the job's input, its
        duration, options and deadline: one transaction, so a crash leaves either the job to
        download again or the job ready to run, never half of each.

        Returns:
            The job as stored, or None when the guard refused (nothing changed).
        """
        ...


class LinkRunner:
    """Downloads the audio of link jobs (see the module docstring). Nothing is paid for while
    it runs, so a process that dies mid-download leaves a job that recovery simply queues
    again (:meth:`bot.jobs.routing.JobProviders.reruns_free`)."""

    def __init__(
        self,
        steps: LinkSteps,
        fetcher: LinkFetcher | None,
        stt: Mapping[str, SpeechToText],
        *,
        check: LengthCheck,
        jobs: JobsConfig,
        audio_pool: AudioPool,
        notify: Callable[[Job | None], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self._steps = steps
        self._fetcher = fetcher
        self._stt = stt
        self._check = check
        self._jobs = jobs
        self._audio = audio_pool
        self._notify = notify
        self._clock = clock

    async def download(self, job: Job, now: float) -> None:
        """QUEUED → SUBMITTING → the audio downloaded and checked → QUEUED with it; FAILED
        with the reason (refused, over a limit, not audio); nothing more once cancelled."""
        started = await self._steps.begin_submit(job.id, now)
        if started is None:
            return  # someone else moved it
        job = started.job
        await self._notify(job)  # the placeholder says it is downloading
        info = link_info(job)
        if self._fetcher is None or info is None:
            await self._fail(job, LinkRefused("disabled").text, "link")
            return
        try:
            got = await self._fetcher.download(info, progress=self._progress(job))
        except DownloadCancelled:
            _LOGGER.info("job %s: download stopped (cancelled)", job.id)
            return
        except InputError as exc:  # LinkRefused: its sentence says why
            await self._fail(job, exc.text, "link")
            return
        except Exception:
            _LOGGER.exception("job %s: download failed", job.id)
            await self._fail(job, LinkRefused("failed").text, "link")
            return
        try:
            fetched = await self._ready(job, got)
        except InputError as exc:  # not audio, or longer than a limit allows
            await self._fail(job, exc.text, "audio")
            return
        except Exception:  # failed here, not left to be downloaded again and again
            _LOGGER.exception("job %s: the downloaded audio could not be readied", job.id)
            await self._fail(job, LinkRefused("failed").text, "internal")
            return
        stored = await self._steps.downloaded(job.id, fetched, self._clock())
        if stored is not None:
            _LOGGER.info(
                "job %s: %d bytes downloaded, %.0f s of audio",
                job.id,
                len(got.data),
                stored.input_duration or 0.0,
            )
            await self._notify(stored)

    def _progress(self, job: Job) -> ProgressFn:
        """The download's progress callback: records each step, moves the placeholder at each
        10 % (or 10 MB), and says stop once the job is no longer being downloaded."""
        shown = [_notch(0, job.progress)]

        async def progress(done: int, total: int | None) -> bool:
            share = min(1.0, done / total) if total else None
            stored = await self._steps.download_progress(job.id, done, share, self._clock())
            if stored is None:
                return False
            if _notch(done, share) != shown[0]:
                shown[0] = _notch(done, share)
                await self._notify(stored)
            return True

        return progress

    async def _ready(self, job: Job, got: Downloaded) -> Fetched:
        """Probe the download, check its real length, and ready it whole (in a format and size
        the model takes) or to be split, as intake does with an upload."""
        caps = self._stt[job.provider].capabilities(job.model)
        info = await self._audio.run(audio.probe, got.data, got.filename)
        await self._check(job, info.duration)
        link = {**job.options["link"], "downloaded": True}
        options: dict[str, Any] = {**job.options, "link": link, "filename": got.filename}
        now = self._clock()
        if splitting.needs_split(info, caps.max_duration_seconds, caps.max_upload_bytes):
            plan = split_plan(info.duration, caps, self._jobs)
            options["part_seconds"] = plan.part_seconds
            blob = Blob(got.data, got.filename, audio.mime_for(info.container))
            return Fetched(blob, info.duration, options, max(job.deadline_at, now + plan.seconds))
        whole = await self._audio.run(
            audio.prepare_for_upload,
            got.data,
            got.filename,
            formats=caps.formats,
            max_bytes=caps.max_upload_bytes,
            max_duration=caps.max_duration_seconds,
            info=info,
        )
        deadline = max(job.deadline_at, now + self._jobs.deadline_seconds)
        blob = Blob(whole.data, whole.filename, whole.content_type)
        return Fetched(blob, whole.duration, options, deadline)

    async def _fail(self, job: Job, reason: Msg, code: str) -> None:
        await self._steps.fail(job.id, Failure(encode(reason), code), self._clock())


def _notch(done: int, share: float | None) -> int:
    """Which step of the placeholder's progress this is: each 10 %, or each 10 MB."""
    return int(share * 10) if share is not None else -1 - done // _NOTIFY_BYTES
