"""Summaries and translations of finished transcripts: the VoiceService part asking for them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from bot.config import Config
from bot.errors import InputError
from bot.jobs.models import Job, JobKind, JobState, NewJob
from bot.jobs.text import ACTIONS
from bot.limits import AccessDenied, Guard
from bot.models import Origin
from bot.ports import JobStore
from bot.preferences import Preferences
from bot.replies import TEXT_UNAVAILABLE, language_name, no_transcript


class TextJobsMixin:
    """Creates TEXT jobs; mixed into :class:`bot.service.VoiceService` (which sets these)."""

    store: JobStore
    config: Config
    guard: Guard
    preferences: Preferences
    _clock: Callable[[], float]
    _wake: Callable[[], None]

    def offers_text(self) -> bool:
        """Whether summaries and translations are offered (an ``llm:`` route that can run)."""
        name = self.config.llm.provider
        pc = self.config.providers.get(name) if name else None
        return pc is not None and pc.missing() is None

    async def text_job(
        self, origin: Origin, source_id: str, action: str, language: str | None = None
    ) -> Job:
        """A summary or translation of a finished transcript of this chat, as a durable job.
        Asked again (a second press, another user, a replayed update) while one is live or done,
        that job is returned instead: the same transcript + action + language is paid once.

        Raises:
            InputError: no chat model configured, unknown action, or no such transcript here.
        """
        if not self.guard.allowed(origin):
            raise AccessDenied()
        if not self.offers_text() or action not in ACTIONS:
            raise InputError(TEXT_UNAVAILABLE)
        source = await self.store.find_for_chat(origin.platform, origin.chat_id, source_id)
        if source is None or source.kind is not JobKind.STT or source.transcript is None:
            raise InputError(no_transcript(source_id))
        lang = language_name(language)
        llm = self.config.llm
        raw = f"{source.id}|{action}|{lang}|{llm.provider}|{llm.model}"
        key = hashlib.sha256(raw.encode()).hexdigest()
        existing = await self.store.find_unique(key)
        if existing is not None:
            return existing
        before = await self.store.find_released(key)  # its finished pieces are not paid again
        await self.guard.check_start(origin)
        prefs = await self.preferences.for_origin(origin)
        origin = self.preferences.stamp_locale(origin, prefs)  # replies in the asker's
        now = self._clock()
        job = await self.store.create(
            NewJob(
                kind=JobKind.TEXT,
                origin=origin,
                provider=str(llm.provider),
                model=llm.model,
                options={
                    "action": action,
                    "language": lang,
                    "source": source.id,
                    "max_input_tokens": llm.max_input_tokens,
                    **({"after": before.id} if before is not None else {}),
                },
                deadline_at=now + self.config.jobs.deadline_seconds,
                unique_key=key,
            ),
            now=now,
            admit=self.guard.admission(origin),
        )
        self._wake()
        return job

    async def transcript_for_message(
        self, platform: str, chat_id: str, message_id: str
    ) -> Job | None:
        """The finished transcription shown in a chat message (its reply or placeholder)."""
        for job in await self.store.recent_for_chat(platform, chat_id, limit=50):
            shown = message_id in (job.delivery_message_id, job.progress_message_id)
            if shown and job.kind is JobKind.STT and job.state is JobState.COMPLETED:
                return job
        return None
