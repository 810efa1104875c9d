"""LinkIntake: a shared link in. Everything is checked before a byte of its media is fetched
(access, the link itself, the model, the limits against the length and size the link states),
then it is stored as a transcription job without audio, which the worker downloads first (see
:mod:`bot.jobs.links`)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from bot.chat.settings import Prefs
from bot.config.load import JobsConfig
from bot.links import LinkFetcher, LinkInfo, LinkRefused
from bot.model.errors import AudioTooLong
from bot.model.job import Activity, Job, NewJob
from bot.model.speech import Origin
from bot.service.desk import JobDesk
from bot.service.intake import Intake, SttRoute
from bot.service.placeholder import Placeholder, create_shown
from bot.text import Duration, msg

_LOGGER = logging.getLogger(__name__)


def too_long(seconds: float, limit: float) -> AudioTooLong:
    """The refusal of a recording ``seconds`` long, over the ``limit`` (seconds) per recording."""
    return AudioTooLong(
        msg(
            "This recording is {length} long; the limit is {limit} per recording.",
            length=Duration(seconds),
            limit=Duration(limit),
        ),
        limit_minutes=limit / 60,
    )


class LinkIntake:
    """Creates the transcription jobs of shared links (one per link and chat while it runs)."""

    def __init__(
        self,
        desk: JobDesk,
        intake: Intake,
        fetcher: LinkFetcher | None,
        *,
        jobs: JobsConfig,
        download_seconds: float,
    ) -> None:
        self._desk = desk
        self._intake = intake
        self._fetcher = fetcher
        self._jobs = jobs
        self._download_seconds = download_seconds

    async def transcribe_link(
        self,
        origin: Origin,
        url: str,
        *,
        prefs: Prefs | None = None,
        provider: str | None = None,
        model: str | None = None,
        language: str | None = None,
        diarize: bool | None = None,
        timings: bool = False,
        placeholder: Placeholder | None = None,
    ) -> Job:
        """Check a link and store it as a transcription job; the worker downloads its audio
        (progress shown, ``/cancel`` obeyed), checks its real length, and the usual pipeline
        takes it from there. The same link in the same chat, asked again while its job runs
        (a double press), is that job.

        The options are :meth:`Intake.transcribe`'s; ``url`` is the link as the user gave it.

        Raises:
            LinkRefused: the link will not be fetched (links off, a forbidden address or
                domain, not media, too large, an unsupported site...; the sentence says which).
            AudioTooLong: the link states a length over ``limits.max_audio_minutes``.
            Unsupported, AccessDenied, LimitExceeded, ProviderNotConfigured: as
                :meth:`Intake.transcribe`, every one before any media is fetched.
        """
        guard = self._desk.guard
        guard.check_access(origin)
        if self._fetcher is None:
            raise LinkRefused("disabled", "no link fetcher")
        info = await self._fetcher.inspect(url)  # fetches no media
        asked = (provider, model, language, diarize, timings)
        origin, route = await self._intake.stt_request(origin, prefs, "link", *asked)
        key = _link_key(origin, info, route)
        running = await self._desk.store.find_unique(key)
        if running is not None:  # pressed twice, or sent again while it runs
            return running
        activity = await guard.check_start(origin)
        if info.duration is not None:
            await self._check_seconds(origin, info.duration, activity)
        now = self._desk.clock()
        new = self._new_link(origin, route, info, key, now)
        admit = guard.admission(origin, seconds=info.duration or 0.0)
        job = await create_shown(self._desk.store, new, placeholder, now=now, admit=admit)
        _LOGGER.info("job %s: a %s link to download (%s)", job.id, info.kind, info.extractor)
        self._desk.wake()
        return job

    def _new_link(
        self, origin: Origin, route: SttRoute, info: LinkInfo, key: str, now: float
    ) -> NewJob:
        """The job of a checked link: what it said of itself in its options, no audio yet."""
        new = self._intake.new_stt(origin, route, None, now)
        return replace(
            new,
            options={**new.options, "link": info.as_dict()},
            # The download comes first: the job's time to finish starts after it.
            deadline_at=new.deadline_at + self._download_seconds,
            input_duration=info.duration,  # counted by the daily caps at once, when stated
            unique_key=key,
        )

    async def check_length(self, job: Job, seconds: float) -> None:
        """The limits again once a link's audio is downloaded and its real length known
        (:data:`bot.jobs.links.LengthCheck`): the longest recording, and the daily caps for
        what the link had not stated (a stated length was counted when the job was stored).

        Raises:
            AudioTooLong, LimitExceeded: with the sentence the failed job shows.
        """
        await self._check_seconds(job.origin, seconds, None, counted=job.input_duration or 0.0)

    async def _check_seconds(
        self, origin: Origin, seconds: float, activity: Activity | None, *, counted: float = 0.0
    ) -> None:
        guard = self._desk.guard
        whole = guard.max_audio_seconds()
        if whole is not None and seconds > whole:
            raise too_long(seconds, whole)
        if seconds > counted:
            await guard.check_audio(origin, seconds - counted, activity)


def _link_key(origin: Origin, info: LinkInfo, route: SttRoute) -> str:
    """One live job per link, chat and way of transcribing it."""
    options = route.options
    raw = (
        f"link|{origin.platform}|{origin.chat_id}|{info.url}|{route.provider}|{route.model}|"
        f"{options['language']}|{options['diarize']}"
    )
    return hashlib.sha256(raw.encode()).hexdigest()
