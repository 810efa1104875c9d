"""Chat and personal settings and the reader's language (user > chat > config)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from bot.chat.settings import ChatSettings, Prefs, UserSettings, apply_user_setting
from bot.chat.views import Defaults, describe_settings, voices_text
from bot.config.load import Config
from bot.model.speech import Origin
from bot.text import ENGLISH, Text, negotiate, text_for

Choices = Callable[[], tuple[frozenset[str], frozenset[str]]]


class ChatSettingsStore(Protocol):
    """Per-chat and per-user settings, as JSON-able mappings."""

    async def get_settings(self, platform: str, chat_id: str) -> dict[str, Any]:
        """The stored settings of a chat (empty when never changed)."""
        ...

    async def put_settings(
        self, platform: str, chat_id: str, data: Mapping[str, Any], now: float
    ) -> None:
        """Store a chat's settings, replacing the previous ones."""
        ...

    async def get_user_settings(self, platform: str, user_id: str) -> dict[str, Any]:
        """A person's own settings, for every chat (empty when never changed)."""
        ...

    async def put_user_settings(
        self, platform: str, user_id: str, data: Mapping[str, Any], now: float
    ) -> None:
        """Store a person's own settings, replacing the previous ones."""
        ...

    async def get_preferences(
        self, platform: str, chat_id: str, user_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A chat's and a person's stored settings (each empty when never changed), read in
        one round trip: every job starts with this read."""
        ...


class Preferences:
    """What a person and a chat chose, and the language to answer them in; the service reads it
    before creating a job, /settings and /voices show it."""

    def __init__(
        self,
        store: ChatSettingsStore,
        config: Config,
        *,
        choices: Choices,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.config = config
        self._choices = choices
        self._clock = clock

    async def load(self, platform: str, chat_id: str, user_id: str) -> Prefs:
        """The chat's and the person's settings, in one store round trip."""
        chat, user = await self.store.get_preferences(platform, chat_id, user_id)
        return Prefs(ChatSettings.from_dict(chat), UserSettings.from_dict(user))

    async def for_origin(self, origin: Origin) -> Prefs:
        """:meth:`load` for the chat and person of ``origin``."""
        return await self.load(origin.platform, origin.settings_chat, origin.user_id)

    async def user_settings(self, platform: str, user_id: str) -> UserSettings:
        """One person's own settings (defaults when never changed)."""
        return UserSettings.from_dict(await self.store.get_user_settings(platform, user_id))

    async def change_user_setting(
        self, platform: str, user_id: str, name: str, value: str
    ) -> UserSettings:
        """Change one of a person's own settings (language, voice, ui_language).

        Raises:
            InputError: not a per-user setting, or a bad value.
        """
        current = await self.user_settings(platform, user_id)
        languages, voices = self._choices()
        updated = apply_user_setting(current, name, value, languages=languages, voices=voices)
        await self.store.put_user_settings(platform, user_id, updated.to_dict(), self._clock())
        return updated

    async def remember_client_locale(self, platform: str, user_id: str, locale: str) -> None:
        """Keep the language a person's app reported (see :attr:`UserSettings.client_locale`)."""
        current = await self.user_settings(platform, user_id)
        updated = replace(current, client_locale=locale)
        await self.store.put_user_settings(platform, user_id, updated.to_dict(), self._clock())

    # -- the reader's language ----------------------------------------------------------------

    @staticmethod
    def ui_locale(origin: Origin, chat: ChatSettings, user: UserSettings) -> str:
        """The interface language: the user's choice, else the chat's, else the client's."""
        return negotiate(
            user.ui_language or chat.ui_language or origin.locale or user.client_locale
        )

    def stamp_locale(self, origin: Origin, prefs: Prefs) -> Origin:
        """``origin`` with the resolved interface language, stored with the job it starts."""
        locale = self.ui_locale(origin, prefs.chat, prefs.user)
        return replace(origin, extra={**origin.extra, "locale": locale})

    def text(self, origin: Origin, prefs: Prefs) -> Text:
        """The :class:`Text` to answer ``origin`` with, given its settings."""
        return text_for(self.ui_locale(origin, prefs.chat, prefs.user))

    async def text_for(self, origin: Origin) -> Text:
        """The :class:`Text` to answer ``origin`` with (reads its settings: one round trip)."""
        return self.text(origin, await self.for_origin(origin))

    def describe(
        self,
        settings: ChatSettings,
        user: UserSettings | None = None,
        *,
        tr: Text = ENGLISH,
        ui_locale: str = "en",
    ) -> str:
        """Every setting with its value and where it comes from (user > chat > config)."""
        defaults = Defaults(
            language=self.config.stt.language,
            diarize=self.config.stt.diarize,
            voice=self.config.tts.voice,
            live=self.config.stt.live_transcripts,
        )
        return describe_settings(tr, settings, user or UserSettings(), defaults, ui_locale)

    def voices(self, tr: Text, chat: ChatSettings, user: UserSettings) -> str:
        """What /voices answers: the current TTS model's voices, the one in use marked."""
        _, voices = self._choices()
        return voices_text(tr, voices, user.voice or chat.voice or self.config.tts.voice)

    def voice_names(self) -> list[str]:
        """The current TTS model's voice names (for autocompletion)."""
        return sorted(self._choices()[1])
