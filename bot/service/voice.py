"""VoiceService: the one entry point adapters and the CLI call, a façade over the service's parts
(intake, text jobs, chat admin, a chat's jobs); it holds them and forwards each call."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from bot.audio.pool import AudioPool
from bot.chat.preferences import ChatSettingsStore, Preferences
from bot.config.load import Config
from bot.links import LinkFetcher
from bot.model.job import Job
from bot.providers.base import SpeechToText, TextToSpeech
from bot.service.chat_admin import ChatAdmin
from bot.service.chat_jobs import ChatJobs
from bot.service.desk import JobDesk
from bot.service.intake import Intake
from bot.service.limits import Guard, UsageQueries
from bot.service.links import LinkIntake
from bot.service.records import JobRecords, Recordings
from bot.service.routes import ProviderRoutes
from bot.service.text_jobs import TextJobs

_LOGGER = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class _Forward(Generic[P, R]):
    """A façade method that is ``method`` of the part the façade holds as attribute ``part``."""

    def __init__(self, part: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self._part = part
        self._name = method.__name__
        self.__doc__ = method.__doc__

    def __get__(self, service: object, owner: type | None = None) -> Callable[P, R]:
        # Looked up on each access, so a part replaced on the instance (a test's) is the one called.
        return cast("Callable[P, R]", getattr(getattr(service, self._part), self._name))


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
        fetcher: LinkFetcher | None = None,
    ) -> None:
        guard = Guard(usage, config.limits, config.access, clock)
        self.routes = ProviderRoutes(config, stt=stt, tts=tts)
        self.preferences = Preferences(settings, config, choices=self.routes.choices, clock=clock)
        desk = JobDesk(store, recordings, guard, self.preferences, self.routes, clock, wake)
        self.intake = Intake(
            desk,
            stt=config.stt,
            tts=config.tts,
            jobs=config.jobs,
            audio_pool=audio_pool or AudioPool(),
        )
        self.links = LinkIntake(
            desk,
            self.intake,
            fetcher,
            jobs=config.jobs,
            download_seconds=config.links.download_timeout_seconds,
        )
        self.text_jobs = TextJobs(
            desk,
            llm=config.llm,
            providers=config.providers,
            deadline_seconds=config.jobs.deadline_seconds,
        )
        self.chat_admin = ChatAdmin(
            store,
            guard,
            usage=usage,
            settings=settings,
            choices=self.routes.choices,
            check_diarize=self.routes.check_diarize,
            clock=clock,
        )
        self.chat_jobs = ChatJobs(store, clock=clock, eta=eta)

    # Each call below is the part's own method, bound to the part this service holds: the
    # façade adds nothing, so it restates no signature (the docstrings are the parts').

    # -- providers (ProviderRoutes) ---------------------------------------------------------
    stt_capabilities = _Forward("routes", ProviderRoutes.stt_capabilities)
    tts_capabilities = _Forward("routes", ProviderRoutes.tts_capabilities)

    # -- creating jobs (Intake) -------------------------------------------------------------
    transcribe = _Forward("intake", Intake.transcribe)
    speak = _Forward("intake", Intake.speak)
    already_created = _Forward("intake", Intake.already_created)
    transcribe_link = _Forward("links", LinkIntake.transcribe_link)

    # -- summaries and translations (TextJobs) ----------------------------------------------
    offers_text = _Forward("text_jobs", TextJobs.offers_text)
    text_buttons = _Forward("text_jobs", TextJobs.text_buttons)
    text_job = _Forward("text_jobs", TextJobs.text_job)
    transcript_for_message = _Forward("text_jobs", TextJobs.transcript_for_message)

    # -- a chat's jobs (ChatJobs) -----------------------------------------------------------
    job = _Forward("chat_jobs", ChatJobs.job)
    recent_jobs = _Forward("chat_jobs", ChatJobs.recent_jobs)
    status_text = _Forward("chat_jobs", ChatJobs.status_text)

    # -- access, usage, privacy, cancelling, settings (ChatAdmin) ---------------------------
    allowed = _Forward("chat_admin", ChatAdmin.allowed)
    is_admin = _Forward("chat_admin", ChatAdmin.is_admin)
    usage_text = _Forward("chat_admin", ChatAdmin.usage_text)
    forget = _Forward("chat_admin", ChatAdmin.forget)
    cancel = _Forward("chat_admin", ChatAdmin.cancel)
    settings = _Forward("chat_admin", ChatAdmin.settings)
    change_setting = _Forward("chat_admin", ChatAdmin.change_setting)
