"""The service's view of the providers: which instance and model a request goes to, and what
that model can do (checked before a job is created, not when it fails)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.config.load import Config
from bot.model.errors import ProviderError, ProviderNotConfigured
from bot.model.job import Job
from bot.providers.base import SpeechToText, SttCapabilities, TextToSpeech, TtsCapabilities
from bot.providers.registry import STT, TTS, TYPES
from bot.service.checks import check_stt

_LOGGER = logging.getLogger(__name__)


class ProviderRoutes:
    """The built speech providers by instance name, with the config's routes as defaults."""

    def __init__(
        self,
        config: Config,
        *,
        stt: Mapping[str, SpeechToText],
        tts: Mapping[str, TextToSpeech],
    ) -> None:
        self._config = config
        self._stt = stt
        self._tts = tts

    def stt(self, name: str) -> SpeechToText:
        """The speech-to-text instance ``name``.

        Raises:
            ProviderNotConfigured: no such instance, or it lacks a key or an extra (says which).
        """
        if name in self._stt:
            return self._stt[name]
        raise self._not_configured(name, STT)

    def tts(self, name: str) -> TextToSpeech:
        """The text-to-speech instance ``name`` (raises as :meth:`stt`)."""
        if name in self._tts:
            return self._tts[name]
        raise self._not_configured(name, TTS)

    def _not_configured(self, name: str, role: str) -> ProviderNotConfigured:
        pc = self._config.providers.get(name)
        if pc is None:
            configured = ", ".join(sorted(self._config.providers))
            detail = f"unknown provider {name!r} (configured: {configured})"
        else:
            spec = TYPES.get(pc.type)
            extra = spec.missing_role_extra(role) if spec is not None else None
            detail = (
                pc.missing() or extra or f"provider {name!r} (type {pc.type}) does not offer this"
            )
        return ProviderNotConfigured(detail, provider=name)

    def stt_route(
        self, provider: str | None, model: str | None
    ) -> tuple[str, str, SttCapabilities]:
        """The instance, model and capabilities a transcription goes to: the caller's choice,
        else the ``stt:`` route.

        Raises:
            ProviderNotConfigured: that instance cannot run (see :meth:`stt`).
        """
        cfg = self._config.stt
        name = provider or cfg.provider
        model = model or self._default_model(STT, name, cfg.provider, cfg.model)
        return name, model, self.stt(name).capabilities(model)

    def tts_route(
        self, provider: str | None, model: str | None
    ) -> tuple[str, str, TtsCapabilities]:
        """As :meth:`stt_route`, for speech from text (the ``tts:`` route)."""
        cfg = self._config.tts
        name = provider or cfg.provider
        model = model or self._default_model(TTS, name, cfg.provider, cfg.model)
        return name, model, self.tts(name).capabilities(model)

    def _default_model(self, role: str, name: str, route: str, route_model: str) -> str:
        """The route's model for its own provider; another instance's type default otherwise
        (``--provider local`` must not be asked for NanoGPT's model)."""
        if name == route:
            return route_model
        pc = self._config.providers.get(name)
        spec = TYPES.get(pc.type) if pc is not None else None
        return (spec.default_models.get(role) if spec else None) or route_model

    def stt_capabilities(
        self, provider: str | None = None, model: str | None = None
    ) -> SttCapabilities:
        """What the (default) speech-to-text model can do."""
        name = provider or self._config.stt.provider
        return self.stt(name).capabilities(model or self._config.stt.model)

    def tts_capabilities(
        self, provider: str | None = None, model: str | None = None
    ) -> TtsCapabilities:
        """What the (default) text-to-speech model can do."""
        name = provider or self._config.tts.provider
        return self.tts(name).capabilities(model or self._config.tts.model)

    def choices(self) -> tuple[frozenset[str], frozenset[str]]:
        """Languages the default transcription model and voices the default TTS model take
        (empty when that route cannot run: a setting is then not checked against it)."""
        try:
            languages = self.stt_capabilities().languages
        except ProviderError:
            languages = frozenset()
        try:
            voices = self.tts_capabilities().voices
        except ProviderError:
            voices = frozenset()
        return languages, voices

    def check_diarize(self) -> None:
        """Refuse turning speaker labels on for the configured model when it cannot diarize
        (nothing is checked when that route cannot run).

        Raises:
            Unsupported: the sentence a voice note with ``diarize`` would get on the CLI.
        """
        try:
            caps = self.stt_capabilities()
        except ProviderError:
            return
        check_stt(self._config.stt.model, caps, diarize=True, timings=False)

    def route_translates(self) -> bool:
        """Whether the configured speech-to-text model translates into English itself."""
        try:
            return self.stt_capabilities().translates_to_english
        except ProviderError:
            return False

    def translates(self, job: Job) -> bool:
        """Whether the model that made ``job`` turns speech into English itself."""
        provider = self._stt.get(job.provider)
        try:
            return provider is not None and provider.capabilities(job.model).translates_to_english
        except ProviderError:
            return False
