"""VoiceService: the one entry point adapters and the CLI use to create and inspect jobs."""

from __future__ import annotations

import hashlib
import logging
import math
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import replace

from bot.audio import codec as audio
from bot.audio import splitting
from bot.audio.codec import AudioInfo
from bot.audio.pool import AudioPool
from bot.chat import render
from bot.chat.preferences import ChatSettingsStore, Preferences
from bot.chat.settings import (
    ChatSettings,
    Prefs,
    apply_setting,
    unknown_voice,
)
from bot.chat.status import render_job, render_job_list
from bot.config.load import Config
from bot.model.errors import InputError, ProviderError, ProviderNotConfigured
from bot.model.job import Activity, Blob, Job, JobKind, JobState, NewJob
from bot.model.speech import Origin
from bot.providers.base import SpeechToText, SttCapabilities, TextToSpeech, TtsCapabilities
from bot.providers.registry import STT, TTS, TYPES
from bot.service.chat_admin import ChatAdminMixin
from bot.service.limits import AccessDenied, Guard, UsageQueries, text_too_long
from bot.service.records import JobRecords, Recordings
from bot.service.text_jobs import TextJobsMixin
from bot.text import ENGLISH, Text, msg

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


def _kept_until(job: Job) -> dict[str, object]:
    """``keep_audio_until`` of a job whose recording is kept (see text_jobs), else nothing."""
    until = job.options.get("keep_audio_until")
    return {"keep_audio_until": until} if until else {}


class VoiceService(TextJobsMixin, ChatAdminMixin):
    """Creates jobs (after checking the input against the provider's capabilities) and answers
    questions about them. Adapters never touch the store or providers directly."""

    def __init__(
        self,
        store: JobRecords,
        config: Config,
        *,
        settings: ChatSettingsStore,
        usage: UsageQueries,
        recordings: Recordings,
        stt: Mapping[str, SpeechToText],
        tts: Mapping[str, TextToSpeech],
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        eta: Callable[[Job], float | None] = lambda job: None,
        audio_pool: AudioPool | None = None,
    ) -> None:
        self.store = store
        self._settings = settings
        self._usage = usage
        self._recordings = recordings
        self._audio = audio_pool or AudioPool()
        self._eta = eta
        self.guard = Guard(usage, config.limits, config.access, clock)
        self.config = config
        self._stt = stt
        self._tts = tts
        self._wake = wake
        self._clock = clock
        self.preferences = Preferences(settings, config, choices=self._choices, clock=clock)

    # -- providers --------------------------------------------------------------------------

    def _stt_provider(self, name: str) -> SpeechToText:
        if name in self._stt:
            return self._stt[name]
        raise self._not_configured(name, STT)

    def _tts_provider(self, name: str) -> TextToSpeech:
        if name in self._tts:
            return self._tts[name]
        raise self._not_configured(name, TTS)

    def _not_configured(self, name: str, role: str) -> ProviderNotConfigured:
        pc = self.config.providers.get(name)
        if pc is None:
            configured = ", ".join(sorted(self.config.providers))
            detail = f"unknown provider {name!r} (configured: {configured})"
        else:
            spec = TYPES.get(pc.type)
            extra = spec.missing_role_extra(role) if spec is not None else None
            detail = (
                pc.missing() or extra or f"provider {name!r} (type {pc.type}) does not offer this"
            )
        return ProviderNotConfigured(detail, provider=name)

    def _default_model(self, role: str, name: str, route: str, route_model: str) -> str:
        """The route's model for its own provider; another instance's type default otherwise
        (``--provider local`` must not be asked for NanoGPT's model)."""
        if name == route:
            return route_model
        pc = self.config.providers.get(name)
        spec = TYPES.get(pc.type) if pc is not None else None
        return (spec.default_models.get(role) if spec else None) or route_model

    def stt_capabilities(
        self, provider: str | None = None, model: str | None = None
    ) -> SttCapabilities:
        """What the (default) speech-to-text model can do."""
        name = provider or self.config.stt.provider
        return self._stt_provider(name).capabilities(model or self.config.stt.model)

    def tts_capabilities(
        self, provider: str | None = None, model: str | None = None
    ) -> TtsCapabilities:
        """What the (default) text-to-speech model can do."""
        name = provider or self.config.tts.provider
        return self._tts_provider(name).capabilities(model or self.config.tts.model)

    # -- creating jobs ----------------------------------------------------------------------

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
    ) -> Job:
        """Check and store audio as a transcription job; the poller takes it from there.

        ``dedup_key`` identifies the same file on the platform (Telegram's ``file_unique_id``): a
        finished transcript with the same key and options is reused instead of paid for again.

        Raises:
            AudioError, AudioTooLong: the audio is unusable (message says why).
            ProviderNotConfigured: the chosen provider has no API key.
        """
        if not self.guard.allowed(origin):
            raise AccessDenied()
        prefs = prefs or await self.preferences.for_origin(origin)
        origin = self.preferences.stamp_locale(origin, prefs)
        name, model, caps, options = self._stt_route(
            prefs, filename, provider=provider, model=model, language=language, diarize=diarize
        )
        now = self._clock()
        key = None
        if dedup_key:
            raw = (
                f"{origin.platform}|{dedup_key}|{name}|{model}|{options['language']}|"
                f"{options['diarize']}"
            )
            key = hashlib.sha256(raw.encode()).hexdigest()
            reused = await self._reuse(origin, key, options, now)
            if reused is not None:
                return reused
        activity = await self.guard.check_start(origin)
        if caps.translates_to_english and caps.keep_audio_seconds > 0:
            # Kept for "Translate → English" by the model's own task (see bot.service.text_jobs).
            options["keep_audio_until"] = now + caps.keep_audio_seconds
        info = await self._audio.run(audio.probe, data, filename)
        whole = self.guard.max_audio_seconds()
        if whole is not None and info.duration > whole:
            raise audio.too_long(whole / 60)
        new = NewJob(
            kind=JobKind.STT,
            origin=origin,
            provider=name,
            model=model,
            options=options,
            deadline_at=now + self.config.jobs.deadline_seconds,
            input_duration=info.duration,
            dedup_key=key,
        )
        if splitting.needs_split(info, caps.max_duration_seconds, caps.max_upload_bytes):
            await self.guard.check_audio(origin, info.duration, activity)
            return await self._create_split(new, caps, data, filename, info, now)
        limits = [x for x in (caps.max_duration_seconds, whole) if x]
        cap = min(limits) if limits else None
        return await self._create_whole(new, caps, data, filename, cap, activity, now)

    async def _create_whole(
        self,
        new: NewJob,
        caps: SttCapabilities,
        data: bytes,
        filename: str,
        max_duration: float | None,
        activity: Activity | None,
        now: float,
    ) -> Job:
        """Store a recording the model takes in one piece, in a format and size it accepts
        (re-encoded when needed), once the daily caps allow its length."""
        prepared = await self._audio.run(
            audio.prepare_for_upload,
            data,
            filename,
            formats=caps.formats,
            max_bytes=caps.max_upload_bytes,
            max_duration=max_duration,
        )
        await self.guard.check_audio(new.origin, prepared.duration, activity)
        blob = Blob(prepared.data, prepared.filename, prepared.content_type)
        job = await self.store.create(
            replace(new, input_duration=prepared.duration),
            now=now,
            input_blob=blob,
            admit=self.guard.admission(new.origin, seconds=prepared.duration),
        )
        await self._keep_recording(job, blob)
        self._wake()
        return job

    def _stt_route(
        self,
        prefs: Prefs,
        filename: str,
        *,
        provider: str | None,
        model: str | None,
        language: str | None,
        diarize: bool | None,
    ) -> tuple[str, str, SttCapabilities, dict[str, object]]:
        """Which provider and model transcribe, what they can do, and the job's options: the
        caller's choice first, then the person's and the chat's settings, then the config."""
        cfg, settings = self.config.stt, prefs.chat
        name = provider or cfg.provider
        model = model or self._default_model(STT, name, cfg.provider, cfg.model)
        caps = self._stt_provider(name).capabilities(model)
        lang = language or prefs.user.language or settings.language or cfg.language
        want_diarize = diarize if diarize is not None else settings.diarize
        options: dict[str, object] = {
            "language": lang,
            "diarize": (cfg.diarize if want_diarize is None else want_diarize) and caps.diarization,
            "filename": filename,
            "output": settings.output or "messages",
        }
        return name, model, caps, options

    async def _keep_recording(self, job: Job, blob: Blob) -> None:
        if "keep_audio_until" in job.options:
            await self._recordings.keep_recording(job.id, blob)

    async def _create_split(
        self,
        new: NewJob,
        caps: SttCapabilities,
        data: bytes,
        filename: str,
        info: AudioInfo,
        now: float,
    ) -> Job:
        """Store a recording longer or larger than the model takes as one job to split at
        silences (by the worker: the user is answered at once). Limits and daily caps count the
        whole recording, here, before any part is paid; the deadline grows with the rounds of
        parts to run."""
        seconds = splitting.part_seconds(caps.max_duration_seconds, caps.max_upload_bytes)
        parts = math.ceil(info.duration / (seconds * 0.9))
        rounds = math.ceil(parts / self.config.jobs.part_concurrency)
        blob = Blob(data, filename, audio.mime_for(info.container))
        job = await self.store.create(
            replace(
                new,
                options={**new.options, "part_seconds": seconds},
                deadline_at=now + self.config.jobs.deadline_seconds * max(1, rounds),
            ),
            now=now,
            input_blob=blob,
            admit=self.guard.admission(new.origin, seconds=info.duration),
        )
        await self._keep_recording(job, blob)
        _LOGGER.info(
            "job %s: %.0f s of audio, to split into about %d parts", job.id, info.duration, parts
        )
        self._wake()
        return job

    async def _reuse(
        self, origin: Origin, key: str, options: Mapping[str, object], now: float
    ) -> Job | None:
        previous = await self.store.find_reusable(key)
        if previous is None or previous.result is None or previous.result.get("missing_parts"):
            return None
        _LOGGER.info("reusing transcript of job %s (same file and options)", previous.id)
        job = await self.store.create(
            NewJob(
                kind=JobKind.STT,
                origin=origin,
                provider=previous.provider,
                model=previous.model,
                # The recording stays with the original (Translate → English finds it there).
                options={**options, "reused_from": previous.id, **_kept_until(previous)},
                deadline_at=now,
                input_duration=previous.input_duration,
                dedup_key=key,
            ),
            now=now,
            state=JobState.COMPLETED,
            result={**previous.result, "cost": 0.0},
        )
        self._wake()
        return job

    async def speak(
        self,
        origin: Origin,
        text: str,
        *,
        prefs: Prefs | None = None,
        voice: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> Job:
        """Store a text-to-speech job; long text is split into parts whose audio is joined.

        Raises:
            InputError: empty text, or longer than the provider can take (limit stated).
            ProviderNotConfigured: the chosen provider has no API key.
        """
        cfg = self.config.tts
        prefs = prefs or await self.preferences.for_origin(origin)
        settings, user = prefs.chat, prefs.user
        origin = self.preferences.stamp_locale(origin, prefs)
        name = provider or cfg.provider
        model = model or self._default_model(TTS, name, cfg.provider, cfg.model)
        caps = self._tts_provider(name).capabilities(model)
        text = clean_text(text)
        if not text:
            raise InputError(SPEAK_USAGE)
        activity = await self.guard.check_start(origin)
        await self.guard.check_chars(origin, len(text), activity)
        limit = caps.max_chars if caps.asynchronous else caps.max_chars * MAX_TTS_PARTS
        if len(text) > limit:
            raise InputError(text_too_long(len(text), limit))
        parts = render.split_sentences(text, caps.max_chars)
        chosen_voice = voice or user.voice or settings.voice or cfg.voice
        if caps.voices and chosen_voice not in caps.voices:
            raise InputError(unknown_voice(chosen_voice, caps.voices))
        now = self._clock()
        job = await self.store.create(
            NewJob(
                kind=JobKind.TTS,
                origin=origin,
                provider=name,
                model=model,
                options={
                    "voice": chosen_voice,
                    "speed": cfg.speed,
                    "parts": parts,
                    "chars": len(text),
                },
                deadline_at=now + self.config.jobs.deadline_seconds,
            ),
            now=now,
            admit=self.guard.admission(origin, chars=len(text)),
        )
        self._wake()
        return job

    # -- questions about jobs ---------------------------------------------------------------

    async def already_created(self, origin: Origin) -> bool:
        """True when a job was already created from the same platform event
        (``origin.extra["source"]``): adapters that replay unconfirmed events after a crash use
        this so the replay does not pay twice."""
        source = origin.extra.get("source")
        if not source:
            return False
        found = await self.store.find_by_source(origin.platform, origin.chat_id, str(source))
        return found is not None

    async def job(self, platform: str, chat_id: str, job_id: str) -> Job | None:
        """A job of this chat (another chat's job is invisible: None)."""
        return await self.store.find_for_chat(platform, chat_id, job_id)

    async def recent_jobs(self, platform: str, chat_id: str, limit: int = 10) -> list[Job]:
        """This chat's newest jobs."""
        return await self.store.recent_for_chat(platform, chat_id, limit)

    async def status_text(
        self, platform: str, chat_id: str, job_id: str | None = None, tr: Text = ENGLISH
    ) -> str:
        """What /status answers: one job in detail, or this chat's recent jobs."""
        now = self._clock()
        if not job_id or not job_id.strip():
            return render_job_list(await self.recent_jobs(platform, chat_id), now, tr)
        wanted = job_id.strip().lstrip("#`").rstrip("`")
        if not wanted.isalnum() or len(wanted) > 32:
            return tr.gettext(
                "{value} is not a job id. Job ids look like ab12cd.",
                value=repr(job_id.strip()[:40]),
            )
        job = await self.job(platform, chat_id, wanted)
        if job is None:
            return tr.gettext(
                "No job {id} in this chat. Use /status to list this chat's jobs.", id=wanted
            )
        return render_job(job, now, eta=self._eta(job), tr=tr)

    async def set_progress_message(self, job_id: str, message_id: str) -> None:
        """Remember the placeholder message that shows a job's progress."""
        await self.store.set_progress_message(job_id, message_id, self._clock())

    async def update_job_extra(self, job: Job, **changes: object) -> Job:
        """Merge adapter notes into the job's ``extra`` and return the updated job."""
        extra = {**job.extra, **changes}
        await self.store.update_extra(job.id, extra, self._clock())
        return replace(job, extra=extra)

    # -- chat settings ----------------------------------------------------------------------

    async def settings(self, platform: str, chat_id: str) -> ChatSettings:
        """This chat's settings (defaults when never changed)."""
        return ChatSettings.from_dict(await self._settings.get_settings(platform, chat_id))

    async def change_setting(
        self, platform: str, chat_id: str, name: str, value: str
    ) -> ChatSettings:
        """Change one chat setting from user text and store it.

        Raises:
            InputError: unknown setting or bad value (the message says which and why).
        """
        current = await self.settings(platform, chat_id)
        languages, voices = self._choices()
        updated = apply_setting(current, name, value, languages=languages, voices=voices)
        await self._settings.put_settings(platform, chat_id, updated.to_dict(), self._clock())
        return updated

    def _choices(self) -> tuple[frozenset[str], frozenset[str]]:
        """Languages the default transcription model and voices the default TTS model take."""
        try:
            languages = self.stt_capabilities().languages
        except ProviderError:
            languages = frozenset()
        try:
            voices = self.tts_capabilities().voices
        except ProviderError:
            voices = frozenset()
        return languages, voices
