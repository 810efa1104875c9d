"""Summaries and translations of finished transcripts, as durable TEXT jobs: by the chat model,
or into English by the speech model itself from the kept recording."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from bot.chat.replies import (
    ENGLISH_ONLY,
    RECORDING_GONE,
    TEXT_UNAVAILABLE,
    language_name,
    no_transcript,
)
from bot.config.load import LlmConfig
from bot.jobs.speech_translate import RECORDING, SPEECH
from bot.jobs.text import ACTIONS, TRANSLATE
from bot.model.errors import InputError
from bot.model.job import Blob, Job, JobKind, JobState, NewJob
from bot.model.speech import Origin
from bot.providers.registry import ProviderConfig
from bot.service.desk import JobDesk
from bot.service.placeholder import Placeholder, create_shown

_LOGGER = logging.getLogger(__name__)

ENGLISH_BUTTON = "english"
"""The one button under a transcript whose recording is kept for its model's own translation
into English, when no chat model is configured."""


class TextJobs:
    """Offers and creates summaries and translations of a chat's finished transcripts; the same
    transcript, action and language is paid once."""

    def __init__(
        self,
        desk: JobDesk,
        *,
        llm: LlmConfig,
        providers: Mapping[str, ProviderConfig],
        deadline_seconds: float,
    ) -> None:
        self._desk = desk
        self._llm = llm
        self._providers = providers
        self._deadline_seconds = deadline_seconds

    def offers_text(self) -> bool:
        """Whether summaries and translations are offered (an ``llm:`` route that can run)."""
        name = self._llm.provider
        pc = self._providers.get(name) if name else None
        return pc is not None and pc.missing() is None

    def text_buttons(self, job: Job) -> tuple[str, ...]:
        """The buttons under a finished transcript: Summarize and Translate with a chat model;
        else Translate → English when its speech model translates and the recording is kept."""
        t = job.transcript if job.kind is JobKind.STT else None
        if t is None or not t.text.strip():
            return ()
        if self.offers_text():
            return ACTIONS
        until = float(job.options.get("keep_audio_until") or 0)
        if until > self._desk.clock() and self._desk.routes.translates(job):
            return (ENGLISH_BUTTON,)
        return ()

    async def text_job(
        self,
        origin: Origin,
        source_id: str,
        action: str,
        language: str | None = None,
        placeholder: Placeholder | None = None,
    ) -> Job:
        """A summary or translation of a finished transcript of this chat, as a durable job.
        Asked again (a second press, another user, a replayed update) while one is live or done,
        that job is returned instead: the same transcript + action + language is paid once.
        ``placeholder``: shows a new job before it is stored (see :mod:`.placeholder`).

        Raises:
            AccessDenied, LimitExceeded: not for this user or chat, or over a limit.
            InputError: unknown action, no such transcript here, no chat model configured
                (or only Translate → English, by the speech model), or its recording is gone.
        """
        self._desk.guard.check_access(origin)
        if action not in ACTIONS or not (
            self.offers_text() or self._desk.routes.route_translates()
        ):
            raise InputError(TEXT_UNAVAILABLE)
        source = await self._desk.store.find_for_chat(origin.platform, origin.chat_id, source_id)
        if source is None or source.kind is not JobKind.STT or source.transcript is None:
            raise InputError(no_transcript(source_id))
        lang = language_name(language)
        if action == TRANSLATE and lang == "English" and self._desk.routes.translates(source):
            job = await self._speech_translation(origin, source, placeholder)
            if job is not None:
                return job
        if not self.offers_text():
            english_only = self._desk.routes.translates(source)
            raise InputError(ENGLISH_ONLY if english_only else TEXT_UNAVAILABLE)
        return await self._chat_model_job(origin, source, action, lang, placeholder)

    async def _chat_model_job(
        self,
        origin: Origin,
        source: Job,
        action: str,
        lang: str,
        placeholder: Placeholder | None,
    ) -> Job:
        """``action`` on ``source``'s transcript by the ``llm:`` route's model, as a durable
        job (the one already asked for, while it is live or done)."""
        llm = self._llm
        key, existing = await self._asked(source.id, action, lang, llm.provider, llm.model)
        if existing is not None:
            return existing
        before = await self._desk.store.find_released(key)  # its finished pieces are not paid again
        origin, now = await self._admitted(origin)
        return await self._store(
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
                deadline_at=now + self._deadline_seconds,
                unique_key=key,
            ),
            placeholder,
            now=now,
        )

    async def _speech_translation(
        self, origin: Origin, source: Job, placeholder: Placeholder | None
    ) -> Job | None:
        """The translation into English by the model that made ``source``, from its kept
        recording, as a durable job (once per transcript); None when the recording is no longer
        kept and the chat model can translate instead.

        Raises:
            InputError: the recording is gone and no chat model is configured.
        """
        parts = (source.id, TRANSLATE, "English", SPEECH, source.provider, source.model)
        key, existing = await self._asked(*parts)
        if existing is not None:
            return existing
        recording = await self._kept_recording(source)
        if recording is None:
            if self.offers_text():
                return None
            raise InputError(RECORDING_GONE)
        audio_job, blob = recording
        origin, now = await self._admitted(origin)
        return await self._store(
            NewJob(
                kind=JobKind.TEXT,
                origin=origin,
                provider=audio_job.provider,
                model=audio_job.model,
                options={
                    "action": TRANSLATE,
                    "language": "English",
                    "source": source.id,
                    "engine": SPEECH,
                    "filename": audio_job.options.get("filename"),
                },
                # As long as its transcription was given: the same model on the same audio.
                deadline_at=now + (audio_job.deadline_at - audio_job.created_at),
                input_duration=audio_job.input_duration,
                unique_key=key,
            ),
            placeholder,
            now=now,
            input_blob=blob,
        )

    async def _kept_recording(self, source: Job) -> tuple[Job, Blob] | None:
        """The job that holds ``source``'s recording (itself, or the one whose transcript it
        reused) and the recording, while it is kept."""
        reused = source.options.get("reused_from")
        audio_job = await self._desk.store.get(str(reused)) if reused else source
        if audio_job is None:
            return None
        if float(audio_job.options.get("keep_audio_until") or 0) <= self._desk.clock():
            return None  # past its time, even if the hourly clean-up has not dropped it yet
        blob = await self._desk.recordings.load_blob(audio_job.id, RECORDING)
        return (audio_job, blob) if blob is not None else None

    async def _asked(self, *parts: object) -> tuple[str, Job | None]:
        """The unique key of one text job (what it does to which transcript, by which model)
        and the live or finished job already holding it, if any."""
        key = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
        return key, await self._desk.store.find_unique(key)

    async def _admitted(self, origin: Origin) -> tuple[Origin, float]:
        """After the start limits: ``origin`` with the asker's language (so the job replies in
        it), and the time it is created at."""
        await self._desk.guard.check_start(origin)
        prefs = await self._desk.preferences.for_origin(origin)
        return self._desk.preferences.stamp_locale(origin, prefs), self._desk.clock()

    async def _store(self, new: NewJob, placeholder: Placeholder | None, **create: Any) -> Job:
        """Store ``new`` (shown through ``placeholder`` first), every limit checked again in
        the store's transaction, and wake the poller."""
        admit = self._desk.guard.admission(new.origin)
        job = await create_shown(self._desk.store, new, placeholder, admit=admit, **create)
        self._desk.wake()
        return job

    async def transcript_for_message(
        self, platform: str, chat_id: str, message_id: str
    ) -> Job | None:
        """The finished transcription shown in a chat message (its reply or placeholder)."""
        for job in await self._desk.store.recent_for_chat(platform, chat_id, limit=50):
            shown = message_id in (job.delivery_message_id, job.placeholder_id)
            if shown and job.kind is JobKind.STT and job.state is JobState.COMPLETED:
                return job
        return None
