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
from bot.model.job import Activity, Job, JobState, NewJob
from bot.model.speech import Origin
from bot.service.desk import JobDesk
from bot.service.intake import Intake, SttRoute
from bot.service.placeholder import Placeholder, create_shown
from bot.service.reuse import reuse
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
        (a double press), is that job; asked again once transcribed (in any chat, within the
        retention, the same way), it is answered from that transcript at no cost, like a
        re-sent file (nothing fetched, no limit counted).

        The options are :meth:`Intake.transcribe`'s; ``url`` is the link as the user gave it.

        Raises:
            LinkRefused: the link will not be fetched (links off, a forbidden address or
                domain, not media, too large, an unsupported site...; the sentence says which).
            AudioTooLong: the link states a length over ``limits.max_audio_minutes``.
            Unsupported, AccessDenied, LimitExceeded, ProviderNotConfigured: as
                :meth:`Intake.transcribe`, every one before any media is fetched.
        """
        self._desk.guard.check_access(origin)  # the one access check, before a reuse too
        if self._fetcher is None:
            raise LinkRefused("disabled", "no link fetcher")
        url = self._fetcher.check(url)  # normalised; no network yet
        asked = (provider, model, language, diarize, timings)
        origin, route = await self._intake.stt_request(origin, prefs, "link", *asked)
        running, key = await self._unfinished(_link_key(origin, url, route))
        if running is not None:  # pressed twice, or sent again while it runs
            return running
        dedup = route.dedup_hash(origin.platform, f"link|{url}")
        reused = await self._reuse(origin, route, dedup)
        if reused is not None:
            return reused
        info = await self._fetcher.inspect(url)  # fetches no media
        return await self._store(origin, route, info, (key, dedup), placeholder)

    async def _store(
        self,
        origin: Origin,
        route: SttRoute,
        info: LinkInfo,
        keys: tuple[str, str],
        placeholder: Placeholder | None,
    ) -> Job:
        """Store an inspected link as its job once the limits allow what it states."""
        guard = self._desk.guard
        activity = await guard.check_start(origin)
        if info.duration is not None:
            await self._check_seconds(origin, info.duration, activity)
        now = self._desk.clock()
        new = self._new_link(origin, route, info, *keys, now)
        admit = guard.admission(origin, seconds=info.duration or 0.0, seen=activity)
        job = await create_shown(self._desk.store, new, placeholder, now=now, admit=admit)
        _LOGGER.info("job %s: a %s link to download (%s)", job.id, info.kind, info.extractor)
        self._desk.wake()
        return job

    async def _reuse(self, origin: Origin, route: SttRoute, dedup: str) -> Job | None:
        """The link's finished transcript (same ``dedup`` key: link, platform and way of
        transcribing), stored again as a new job at no cost; None when there is none."""
        now = self._desk.clock()
        new = self._intake.new_stt(origin, route, dedup, now)
        return await reuse(self._desk, new, dedup, now, carry=("link",))

    async def _unfinished(self, key: str) -> tuple[Job | None, str]:
        """The link's unfinished job in this chat, if any, and the unique key a new job takes:
        a finished job keeps its key (the store gives up only failed and cancelled ones' keys),
        so the next job for the same link takes one made from it and that job's id."""
        while (holder := await self._desk.store.find_unique(key)) is not None:
            if holder.state is not JobState.COMPLETED:
                return holder, key
            key = hashlib.sha256(f"{key}|{holder.id}".encode()).hexdigest()
        return None, key

    def _new_link(
        self, origin: Origin, route: SttRoute, info: LinkInfo, key: str, dedup: str, now: float
    ) -> NewJob:
        """The job of a checked link: what it said of itself in its options, no audio yet;
        ``key`` keeps it the link's one unfinished job in the chat, ``dedup`` lets the same
        link sent again reuse its transcript."""
        new = self._intake.new_stt(origin, route, dedup, now)
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


def _link_key(origin: Origin, url: str, route: SttRoute) -> str:
    """One unfinished job per link, chat and way of transcribing it."""
    options = route.options
    raw = (
        f"link|{origin.platform}|{origin.chat_id}|{url}|{route.provider}|{route.model}|"
        f"{options['language']}|{options['diarize']}"
    )
    return hashlib.sha256(raw.encode()).hexdigest()
