"""Access, usage, privacy, cancelling and chat settings: what answers a chat's people and admins
(/usage, /forget, /cancel, /settings)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.chat import replies
from bot.chat.preferences import ChatSettingsStore, Choices
from bot.chat.settings import ChatSettings, apply_setting
from bot.chat.sources import downloading
from bot.model.errors import InputError
from bot.model.job import Job, JobState
from bot.model.speech import Origin
from bot.service.limits import AccessDenied, Guard, UsageQueries, day_start
from bot.service.records import JobRecords
from bot.text import ENGLISH, Msg, Text, msg

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A successful cancel: the job as stored now, whether it had been sent, the reply."""

    job: Job
    sent: bool
    text: Msg


class ChatAdmin:
    """Answers who may use the bot, what it cost, and a chat's own commands on its jobs and
    settings."""

    def __init__(
        self,
        store: JobRecords,
        guard: Guard,
        *,
        usage: UsageQueries,
        settings: ChatSettingsStore,
        choices: Choices,
        check_diarize: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._usage = usage
        self._settings = settings
        self._guard = guard
        self._choices = choices
        self._check_diarize = check_diarize
        self._clock = clock

    def allowed(self, origin: Origin) -> bool:
        """Whether to answer this user/chat at all (deny and allow lists)."""
        return self._guard.allowed(origin)

    def is_admin(self, origin: Origin) -> bool:
        """Whether this user is a configured bot admin."""
        return self._guard.is_admin(origin)

    async def usage_text(self, origin: Origin, tr: Text = ENGLISH) -> str:
        """What /usage shows a bot admin: jobs, audio minutes, characters and cost per user and
        chat, today and over 30 days.

        Raises:
            AccessDenied: the caller is not a bot admin.
        """
        if not self.is_admin(origin):
            raise AccessDenied(
                msg("Only the bot's admins can see usage (access.admins in the config).")
            )
        now = self._clock()
        lines: list[str] = []
        periods = (
            (tr.gettext("Today (UTC):"), day_start(now)),
            (tr.gettext("Last 30 days:"), now - 30 * 86400),
        )
        for title, since in periods:
            rows = await self._usage.usage(since)
            lines.append(title)
            if not rows:
                lines.append("  " + tr.gettext("no jobs"))
            for r in rows[:15]:
                cost = f"{tr.decimal(r['cost'], 4)} {r['currency'] or ''}".rstrip()
                line = tr.ngettext(
                    "{platform} chat {chat} user {user}: {n} job, {minutes} audio min, "
                    "{chars} chars, cost {cost}",
                    "{platform} chat {chat} user {user}: {n} jobs, {minutes} audio min, "
                    "{chars} chars, cost {cost}",
                    r["jobs"],
                    platform=r["platform"],
                    chat=r["chat_id"],
                    user=r["user_id"],
                    minutes=tr.decimal(r["audio_seconds"] / 60, 1),
                    chars=r["chars"],
                    cost=cost,
                )
                lines.append("  " + line)
            total = tr.decimal(sum(r["cost"] for r in rows), 4)
            lines.append("  " + tr.gettext("total cost: {cost}", cost=total))
        return "\n".join(lines)

    async def forget(self, origin: Origin, tr: Text = ENGLISH) -> str:
        """Delete the caller's jobs in this chat (transcripts, audio, text) and say how many."""
        count = await self._store.forget(origin.platform, origin.chat_id, origin.user_id)
        if count == 0:
            return tr.gettext("You have no stored jobs in this chat.")
        return tr.ngettext(
            "Deleted {n} of your jobs in this chat, with its transcript and audio.",
            "Deleted {n} of your jobs in this chat, with their transcripts and audio.",
            count,
        )

    async def cancel(self, origin: Origin, job_id: str | None, *, admin: bool) -> Cancelled:
        """Cancel an unfinished job of this chat: ``job_id``, or the caller's newest one.

        Only its user may cancel a job, or a chat admin (``admin``). Before it was sent it is
        never sent; after, polling stops and the reply says it may still be charged.

        Raises:
            InputError: no such job here, not the caller's, or already finished (says which).
        """
        wanted = (job_id or "").strip().lstrip("#`").rstrip("`").lower()
        if wanted:
            job = await self._store.find_for_chat(origin.platform, origin.chat_id, wanted)
            if job is None:
                raise InputError(replies.cancel_unknown(wanted))
        else:
            mine = [
                j
                for j in await self._store.recent_for_chat(origin.platform, origin.chat_id, 50)
                if j.origin.user_id == origin.user_id and not j.state.terminal
            ]
            if not mine:
                raise InputError(replies.CANCEL_NOTHING)
            job = mine[0]
        if job.origin.user_id != origin.user_id and not admin:
            raise InputError(replies.CANCEL_NOT_YOURS)
        # A link still downloading has not reached the speech service: nothing to charge.
        sent = job.state is not JobState.QUEUED and not downloading(job)
        cancelled = await self._store.cancel(job.id, self._clock())
        if cancelled is None:
            raise InputError(replies.cancel_too_late(job.id))
        _LOGGER.info("job %s cancelled by %s (was %s)", job.id, origin.user_id, job.state)
        return Cancelled(cancelled, sent, replies.cancelled_text(cancelled, sent=sent))

    async def settings(self, platform: str, chat_id: str) -> ChatSettings:
        """This chat's settings (defaults when never changed)."""
        return ChatSettings.from_dict(await self._settings.get_settings(platform, chat_id))

    async def change_setting(
        self, platform: str, chat_id: str, name: str, value: str
    ) -> ChatSettings:
        """Change one chat setting from user text and store it.

        Raises:
            InputError: unknown setting or bad value (the message says which and why).
            Unsupported: speaker labels turned on for a model that cannot diarize.
        """
        current = await self.settings(platform, chat_id)
        languages, voices = self._choices()
        updated = apply_setting(current, name, value, languages=languages, voices=voices)
        if updated.diarize and not current.diarize:
            self._check_diarize()  # refused now, not silently ignored on every voice note
        await self._settings.put_settings(platform, chat_id, updated.to_dict(), self._clock())
        return updated
