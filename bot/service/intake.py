"""Intake: voice notes and /speak text in, checked against access, limits and the provider's
capabilities, stored as durable jobs the poller runs (one path for every platform: the adapter
has answered before the job is stored, see :mod:`bot.service.placeholder`)."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from dataclasses import dataclass, replace

from bot.audio import codec as audio
from bot.audio import splitting
from bot.audio.codec import AudioInfo
from bot.audio.pool import AudioPool
from bot.chat import render
from bot.chat.settings import Prefs, unknown_voice
from bot.config.load import JobsConfig, SttConfig, TtsConfig
from bot.jobs.split import split_plan
from bot.model.errors import InputError
from bot.model.job import Activity, Admission, Blob, Job, JobKind, NewJob, new_job_id
from bot.model.speech import Origin
from bot.providers.base import SttCapabilities, TtsCapabilities
from bot.service.checks import Unsupported, check_stt, chosen_language, known_language
from bot.service.desk import JobDesk
from bot.service.limits import text_too_long
from bot.service.placeholder import Placeholder, create_shown
from bot.service.reuse import reuse, speech_key
from bot.text import msg

_LOGGER = logging.getLogger(__name__)

MAX_TTS_PARTS = 10
SPEAK_USAGE = msg("Nothing to say: give me some text, e.g. /speak Hello there.")


def clean_text(text: str) -> str:
    """Drop control and zero-width characters that make TTS read garbage; keep emoji and RTL."""
    kept = [
        ch
        for ch in text
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf") or ch == "\u200d"
    ]
    return "".join(kept).strip()


@dataclass(frozen=True, slots=True)
class _Ready:
    """A recording that passed every check: the job to store, its input, and the limits its
    insert checks once more (in the same transaction)."""

    new: NewJob
    blob: Blob
    admit: Admission | None


@dataclass(frozen=True, slots=True)
class SttRoute:
    """Where one transcription goes and the options its job is stored with."""

    provider: str
    model: str
    caps: SttCapabilities
    options: dict[str, object]

    def dedup_hash(self, platform: str, dedup_key: str) -> str:
        """The same file on the same platform, transcribed the same way: one hash."""
        raw = (
            f"{platform}|{dedup_key}|{self.provider}|{self.model}|{self.options['language']}|"
            f"{self.options['diarize']}"
        )
        return hashlib.sha256(raw.encode()).hexdigest()


class Intake:
    """Creates transcription and speech jobs once every check has passed, then wakes the
    poller; nothing is paid for before that."""

    def __init__(
        self,
        desk: JobDesk,
        *,
        stt: SttConfig,
        tts: TtsConfig,
        jobs: JobsConfig,
        audio_pool: AudioPool,
    ) -> None:
        self._desk = desk
        self._stt = stt
        self._tts = tts
        self._jobs = jobs
        self._audio = audio_pool

    async def already_created(self, origin: Origin) -> bool:
        """True when a job was already created from the same platform event
        (``origin.extra["source"]``): adapters that replay unconfirmed events after a crash use
        this so the replay does not pay twice."""
        source = origin.extra.get("source")
        if not source:
            return False
        found = await self._desk.store.find_by_source(origin.platform, origin.chat_id, str(source))
        return found is not None

    # -- voice notes ------------------------------------------------------------------------

    async def transcribe(
        self,
        origin: Origin,
        data: bytes,
        filename: str,
        *,
        prefs: Prefs | None = None,
        dedup_key: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        language: str | None = None,
        diarize: bool | None = None,
        timings: bool = False,
        placeholder: Placeholder | None = None,
    ) -> Job:
        """Check and store audio as a transcription job; the poller takes it from there.

        ``language`` (a code or a name), ``diarize`` and ``timings`` (subtitles wanted) are what
        the caller asks for: the model is checked for them before the audio is even probed.
        ``dedup_key`` identifies the same file on the platform (Telegram's ``file_unique_id``): a
        finished transcript with the same key and options is reused instead of paid for again.
        ``placeholder``: shows the job before it is stored (see :mod:`.placeholder`).

        Raises:
            Unsupported: the model cannot do what was asked (timings, speakers, the language).
            AccessDenied, LimitExceeded: not for this user or chat, or over a limit.
            AudioError, AudioTooLong: the audio is unusable (message says why).
            ProviderNotConfigured: the chosen provider is unknown or cannot run (no API key,
                a missing extra).
        """
        self._desk.guard.check_access(origin)  # the one access check, before a reuse too
        asked = (provider, model, language, diarize, timings)
        origin, route = await self.stt_request(origin, prefs, filename, *asked)
        now = self._desk.clock()
        key = route.dedup_hash(origin.platform, dedup_key) if dedup_key else None
        new = self.new_stt(origin, route, key, now)
        if key is not None:
            reused = await reuse(self._desk, new, key, now)
            if reused is not None:
                return reused
        activity = await self._desk.guard.check_start(origin)
        ready = await self._ready_stt(new, route.caps, data, filename, activity, now)
        return await self._store_stt(ready, placeholder, now)

    async def stt_request(
        self,
        origin: Origin,
        prefs: Prefs | None,
        filename: str,
        provider: str | None,
        model: str | None,
        language: str | None,
        diarize: bool | None,
        timings: bool,
    ) -> tuple[Origin, SttRoute]:
        """A transcription request's origin (stamped with the reader's locale) and its route,
        the model checked for what was asked (timings, speakers, the language) before anything
        is read or fetched (uploads and links alike)."""
        prefs = prefs or await self._desk.preferences.for_origin(origin)
        origin = self._desk.preferences.stamp_locale(origin, prefs)
        route = self._stt_route(prefs, filename, provider, model, language, diarize)
        check_stt(route.model, route.caps, diarize=diarize, timings=timings)
        return origin, route

    def new_stt(self, origin: Origin, route: SttRoute, key: str | None, now: float) -> NewJob:
        """The transcription job to store once the recording passed its checks."""
        return NewJob(
            kind=JobKind.STT,
            origin=origin,
            provider=route.provider,
            model=route.model,
            options=route.options,
            deadline_at=now + self._jobs.deadline_seconds,
            dedup_key=key,
            id=new_job_id(),  # drawn now: a placeholder shows it before the job is stored
        )

    def _stt_route(
        self,
        prefs: Prefs,
        filename: str,
        provider: str | None,
        model: str | None,
        language: str | None,
        diarize: bool | None,
    ) -> SttRoute:
        """Which provider and model transcribe, what they can do, and the job's options: the
        caller's choice first, then the person's and the chat's settings, then the config (the
        language checked against the model's either way)."""
        cfg, settings = self._stt, prefs.chat
        name, model, caps = self._desk.routes.stt_route(provider, model)
        if language:
            lang = chosen_language(language, caps)
        else:
            lang = prefs.user.language or settings.language or cfg.language
            known_language(lang, caps)
        want_diarize = diarize if diarize is not None else settings.diarize
        options: dict[str, object] = {
            "language": lang,
            "diarize": (cfg.diarize if want_diarize is None else want_diarize) and caps.diarization,
            "filename": filename,
            "output": settings.output or "messages",
            "live_transcripts": cfg.live_transcripts if settings.live is None else settings.live,
        }
        return SttRoute(name, model, caps, options)

    async def _ready_stt(
        self,
        new: NewJob,
        caps: SttCapabilities,
        data: bytes,
        filename: str,
        activity: Activity | None,
        now: float,
    ) -> _Ready:
        """Probe the recording once, check its length, and ready it whole or to be split."""
        if caps.translates_to_english and caps.keep_audio_seconds > 0:
            # Kept for "Translate → English" by the model's own task (see bot.service.text_jobs).
            new = replace(
                new, options={**new.options, "keep_audio_until": now + caps.keep_audio_seconds}
            )
        info = await self._audio.run(audio.probe, data, filename)
        whole = self._desk.guard.max_audio_seconds()
        if whole is not None and info.duration > whole:
            raise audio.too_long(whole / 60)
        new = replace(new, input_duration=info.duration)
        if splitting.needs_split(info, caps.max_duration_seconds, caps.max_upload_bytes):
            await self._desk.guard.check_audio(new.origin, info.duration, activity)
            return self._ready_split(new, caps, data, filename, info, activity, now)
        return await self._ready_whole(new, caps, data, filename, info, activity)

    async def _ready_whole(
        self,
        new: NewJob,
        caps: SttCapabilities,
        data: bytes,
        filename: str,
        info: AudioInfo,
        activity: Activity | None,
    ) -> _Ready:
        """A recording the model takes in one piece, in a format and size it accepts
        (re-encoded when needed), once the daily caps allow its length."""
        limits = [x for x in (caps.max_duration_seconds, self._desk.guard.max_audio_seconds()) if x]
        prepared = await self._audio.run(
            audio.prepare_for_upload,
            data,
            filename,
            formats=caps.formats,
            max_bytes=caps.max_upload_bytes,
            max_duration=min(limits) if limits else None,
            info=info,  # probed already: the file is not read twice
        )
        await self._desk.guard.check_audio(new.origin, prepared.duration, activity)
        return _Ready(
            replace(new, input_duration=prepared.duration),
            Blob(prepared.data, prepared.filename, prepared.content_type),
            self._desk.guard.admission(new.origin, seconds=prepared.duration, seen=activity),
        )

    def _ready_split(
        self,
        new: NewJob,
        caps: SttCapabilities,
        data: bytes,
        filename: str,
        info: AudioInfo,
        activity: Activity | None,
        now: float,
    ) -> _Ready:
        """A recording longer or larger than the model takes, as one job to split at silences
        (by the worker: the user is answered at once). Limits and daily caps count the whole
        recording, here, before any part is paid; the deadline grows with the rounds of parts
        to run."""
        plan = split_plan(info.duration, caps, self._jobs)
        _LOGGER.info(
            "job %s: %.0f s of audio, to split into about %d parts",
            new.id,
            info.duration,
            plan.parts,
        )
        return _Ready(
            replace(
                new,
                options={**new.options, "part_seconds": plan.part_seconds},
                deadline_at=now + plan.seconds,
            ),
            Blob(data, filename, audio.mime_for(info.container)),
            self._desk.guard.admission(new.origin, seconds=info.duration, seen=activity),
        )

    async def _store_stt(self, ready: _Ready, placeholder: Placeholder | None, now: float) -> Job:
        """Store a checked recording as its job (shown first, see :mod:`.placeholder`)."""
        job = await create_shown(
            self._desk.store,
            ready.new,
            placeholder,
            now=now,
            input_blob=ready.blob,
            admit=ready.admit,
        )
        if "keep_audio_until" in job.options:
            await self._desk.recordings.keep_recording(job.id, ready.blob)
        self._desk.wake()
        return job

    # -- /speak -----------------------------------------------------------------------------

    async def speak(
        self,
        origin: Origin,
        text: str,
        *,
        prefs: Prefs | None = None,
        voice: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        placeholder: Placeholder | None = None,
    ) -> Job:
        """Store a text-to-speech job; long text is split into parts whose audio is joined
        (``placeholder``: shows the job before it is stored, see :mod:`.placeholder`).

        Raises:
            InputError: empty text.
            Unsupported: longer than the model takes (limit stated), or a voice it lacks.
            AccessDenied, LimitExceeded: not for this user or chat, or over a limit.
            ProviderNotConfigured: the chosen provider is unknown or cannot run (no API key,
                a missing extra).
        """
        prefs = prefs or await self._desk.preferences.for_origin(origin)
        origin = self._desk.preferences.stamp_locale(origin, prefs)
        name, model, caps = self._desk.routes.tts_route(provider, model)
        text = clean_text(text)
        if not text:
            raise InputError(SPEAK_USAGE)
        self._desk.guard.check_access(origin)  # the one access check, before a reuse too
        chosen = voice or prefs.user.voice or prefs.chat.voice or self._tts.voice
        now = self._desk.clock()
        new = self._new_tts(origin, name, model, chosen, text, now)
        # The same clip asked again is free, like a transcript re-sent: no limit counts it.
        reused = await reuse(self._desk, new, str(new.dedup_key), now)
        if reused is not None:
            return reused
        activity = await self._desk.guard.check_start(origin)
        await self._desk.guard.check_chars(origin, len(text), activity)
        new = replace(new, options={**new.options, **self._tts_options(text, caps, chosen)})
        job = await create_shown(
            self._desk.store,
            new,
            placeholder,
            now=now,
            admit=self._desk.guard.admission(origin, chars=len(text), seen=activity),
        )
        self._desk.wake()
        return job

    def _new_tts(
        self, origin: Origin, provider: str, model: str, voice: str, text: str, now: float
    ) -> NewJob:
        """A speech job before its text is cut into parts, under the key of the clip it makes."""
        speed = self._tts.speed
        return NewJob(
            JobKind.TTS,
            origin,
            provider,
            model,
            {"voice": voice, "speed": speed, "chars": len(text)},
            now + self._jobs.deadline_seconds,
            dedup_key=speech_key(origin.platform, provider, model, voice, speed, text),
        )

    def _tts_options(self, text: str, caps: TtsCapabilities, voice: str) -> dict[str, object]:
        """A speech job's options: the text in parts the model takes, and a voice it has.

        Raises:
            Unsupported: the text is longer than the model takes in all its parts, or the
                voice is not one of the model's (before anything is stored or sent).
        """
        limit = caps.max_chars if caps.asynchronous else caps.max_chars * MAX_TTS_PARTS
        if len(text) > limit:
            raise Unsupported(text_too_long(len(text), limit))
        if not caps.has_voice(voice):
            raise Unsupported(unknown_voice(voice, caps.voices))
        return {"parts": render.split_sentences(text, caps.max_chars)}
