"""VoiceService: the one entry point adapters and the CLI call, a façade over the service's parts
(intake, text jobs, chat admin, a chat's jobs); it holds them and forwards each call."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from bot.audio.pool import AudioPool
from bot.chat.preferences import ChatSettingsStore, Preferences
from bot.chat.settings import ChatSettings, Prefs
from bot.config.load import Config
from bot.model.job import Job
from bot.model.speech import Origin
from bot.providers.base import SpeechToText, SttCapabilities, TextToSpeech, TtsCapabilities
from bot.service.chat_admin import Cancelled, ChatAdmin
from bot.service.chat_jobs import ChatJobs
from bot.service.intake import Intake
from bot.service.limits import Guard, UsageQueries
from bot.service.placeholder import Placeholder
from bot.service.records import JobRecords, Recordings
from bot.service.routes import ProviderRoutes
from bot.service.text_jobs import TextJobs
from bot.text import ENGLISH, Text

_LOGGER = logging.getLogger(__name__)


class VoiceService:
    """Creates jobs (after checking the input against access, limits and the provider's
    capabilities) and answers questions about them. Adapters never touch the store or
    providers directly; each call is forwarded to the part that owns it."""

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
        guard = Guard(usage, config.limits, config.access, clock)
        self.routes = ProviderRoutes(config, stt=stt, tts=tts)
        self.preferences = Preferences(settings, config, choices=self.routes.choices, clock=clock)
        self.intake = Intake(
            store,
            recordings,
            guard,
            self.preferences,
            self.routes,
            stt=config.stt,
            tts=config.tts,
            jobs=config.jobs,
            audio_pool=audio_pool or AudioPool(),
            clock=clock,
            wake=wake,
        )
        self.text_jobs = TextJobs(
            store,
            recordings,
            guard,
            self.preferences,
            self.routes,
            llm=config.llm,
            providers=config.providers,
            deadline_seconds=config.jobs.deadline_seconds,
            clock=clock,
            wake=wake,
        )
        self.chat_admin = ChatAdmin(
            store, guard, usage=usage, settings=settings, choices=self.routes.choices, clock=clock
        )
        self.chat_jobs = ChatJobs(store, clock=clock, eta=eta)

    # -- providers (ProviderRoutes) ---------------------------------------------------------

    def stt_capabilities(
        self, provider: str | None = None, model: str | None = None
    ) -> SttCapabilities:
        """What the (default) speech-to-text model can do."""
        return self.routes.stt_capabilities(provider, model)

    def tts_capabilities(
        self, provider: str | None = None, model: str | None = None
    ) -> TtsCapabilities:
        """What the (default) text-to-speech model can do."""
        return self.routes.tts_capabilities(provider, model)

    # -- creating jobs (Intake) -------------------------------------------------------------

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
        placeholder: Placeholder | None = None,
    ) -> Job:
        """Store audio as a transcription job (see :meth:`Intake.transcribe`)."""
        return await self.intake.transcribe(
            origin,
            data,
            filename,
            prefs=prefs,
            dedup_key=dedup_key,
            provider=provider,
            model=model,
            language=language,
            diarize=diarize,
            placeholder=placeholder,
        )

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
        """Store a text-to-speech job (see :meth:`Intake.speak`)."""
        return await self.intake.speak(
            origin,
            text,
            prefs=prefs,
            voice=voice,
            provider=provider,
            model=model,
            placeholder=placeholder,
        )

    async def already_created(self, origin: Origin) -> bool:
        """Whether a job came from this platform event already (see
        :meth:`Intake.already_created`)."""
        return await self.intake.already_created(origin)

    # -- summaries and translations (TextJobs) ----------------------------------------------

    def offers_text(self) -> bool:
        """Whether summaries and translations are offered (an ``llm:`` route that can run)."""
        return self.text_jobs.offers_text()

    def text_buttons(self, job: Job) -> tuple[str, ...]:
        """The buttons under a finished transcript (see :meth:`TextJobs.text_buttons`)."""
        return self.text_jobs.text_buttons(job)

    async def text_job(
        self,
        origin: Origin,
        source_id: str,
        action: str,
        language: str | None = None,
        placeholder: Placeholder | None = None,
    ) -> Job:
        """A summary or translation of a transcript as a job (see :meth:`TextJobs.text_job`)."""
        return await self.text_jobs.text_job(origin, source_id, action, language, placeholder)

    async def transcript_for_message(
        self, platform: str, chat_id: str, message_id: str
    ) -> Job | None:
        """The finished transcription shown in a chat message (its reply or placeholder)."""
        return await self.text_jobs.transcript_for_message(platform, chat_id, message_id)

    # -- a chat's jobs (ChatJobs) -----------------------------------------------------------

    async def job(self, platform: str, chat_id: str, job_id: str) -> Job | None:
        """A job of this chat (another chat's job is invisible: None)."""
        return await self.chat_jobs.job(platform, chat_id, job_id)

    async def recent_jobs(self, platform: str, chat_id: str, limit: int = 10) -> list[Job]:
        """This chat's newest jobs."""
        return await self.chat_jobs.recent_jobs(platform, chat_id, limit)

    async def status_text(
        self, platform: str, chat_id: str, job_id: str | None = None, tr: Text = ENGLISH
    ) -> str:
        """What /status answers: one job in detail, or this chat's recent jobs."""
        return await self.chat_jobs.status_text(platform, chat_id, job_id, tr)

    # -- access, usage, privacy, cancelling, settings (ChatAdmin) ---------------------------

    def allowed(self, origin: Origin) -> bool:
        """Whether to answer this user/chat at all (deny and allow lists)."""
        return self.chat_admin.allowed(origin)

    def is_admin(self, origin: Origin) -> bool:
        """Whether this user is a configured bot admin."""
        return self.chat_admin.is_admin(origin)

    async def usage_text(self, origin: Origin, tr: Text = ENGLISH) -> str:
        """What /usage shows a bot admin (see :meth:`ChatAdmin.usage_text`)."""
        return await self.chat_admin.usage_text(origin, tr)

    async def forget(self, origin: Origin, tr: Text = ENGLISH) -> str:
        """Delete the caller's jobs in this chat and say how many."""
        return await self.chat_admin.forget(origin, tr)

    async def cancel(self, origin: Origin, job_id: str | None, *, admin: bool) -> Cancelled:
        """Cancel an unfinished job of this chat (see :meth:`ChatAdmin.cancel`)."""
        return await self.chat_admin.cancel(origin, job_id, admin=admin)

    async def settings(self, platform: str, chat_id: str) -> ChatSettings:
        """This chat's settings (defaults when never changed)."""
        return await self.chat_admin.settings(platform, chat_id)

    async def change_setting(
        self, platform: str, chat_id: str, name: str, value: str
    ) -> ChatSettings:
        """Change one chat setting from user text (see :meth:`ChatAdmin.change_setting`)."""
        return await self.chat_admin.change_setting(platform, chat_id, name, value)
