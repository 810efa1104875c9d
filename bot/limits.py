"""Access lists and usage limits, checked before a paid job is created."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.config import AccessConfig, LimitsConfig
from bot.errors import InputError
from bot.jobs.store import SqliteJobStore
from bot.models import Origin
from bot.status import format_age

OPERATOR_PLATFORM = "cli"  # the operator's own command line: no lists, no limits


class LimitExceeded(InputError):
    """A usage limit was hit; the message says which one and when it resets."""


class AccessDenied(InputError):
    """The user, chat or guild may not use this bot."""

    default_message = "This bot is not available here."


def identities(origin: Origin) -> set[str]:
    """The access-list names of where a request came from."""
    p = origin.platform
    names = {f"{p}:user:{origin.user_id}", f"{p}:chat:{origin.chat_id}"}
    guild = origin.extra.get("guild_id")
    if guild:
        names.add(f"{p}:guild:{guild}")
    return names


def day_start(now: float) -> float:
    """Epoch seconds of 00:00 UTC on the day of ``now``."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


def _resets(now: float) -> str:
    tomorrow = day_start(now) + timedelta(days=1).total_seconds()
    return f"The limit resets at 00:00 UTC (in {format_age(tomorrow - now)})."


class Guard:
    """Decides whether a request may become a (paid) job."""

    def __init__(
        self,
        store: SqliteJobStore,
        limits: LimitsConfig,
        access: AccessConfig,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._limits = limits
        self._access = access
        self._clock = clock

    def allowed(self, origin: Origin) -> bool:
        """False for denied users/chats/guilds, and for everyone not allowed when an allow list
        exists (admins are always allowed)."""
        names = identities(origin)
        if origin.platform == OPERATOR_PLATFORM or self.is_admin(origin):
            return True
        if names & set(self._access.deny):
            return False
        return not self._access.allow or bool(names & set(self._access.allow))

    def is_admin(self, origin: Origin) -> bool:
        """True for the configured bot admins."""
        return f"{origin.platform}:user:{origin.user_id}" in self._access.admins

    def max_audio_seconds(self) -> float | None:
        """The configured longest audio, if any."""
        minutes = self._limits.max_audio_minutes
        return minutes * 60 if minutes > 0 else None

    async def check_start(self, origin: Origin) -> None:
        """Access, rate and concurrency limits: checked before any work is done.

        Raises:
            AccessDenied, LimitExceeded: with the sentence to show.
        """
        if not self.allowed(origin):
            raise AccessDenied()
        if origin.platform == OPERATOR_PLATFORM:
            return
        lim, now, p = self._limits, self._clock(), origin.platform
        if lim.jobs_per_minute > 0:
            started = await self._store.count_started(p, origin.user_id, now - 60)
            if started >= lim.jobs_per_minute:
                raise LimitExceeded(
                    f"You started {started} jobs in the last minute (limit "
                    f"{lim.jobs_per_minute}). Please wait a minute and try again."
                )
        if lim.concurrent_per_user > 0:
            active = await self._store.count_active(p, user_id=origin.user_id)
            if active >= lim.concurrent_per_user:
                raise LimitExceeded(
                    f"You already have {active} unfinished jobs (limit "
                    f"{lim.concurrent_per_user}). Wait for one to finish; /status shows them."
                )
        if lim.concurrent_per_chat > 0:
            active = await self._store.count_active(p, chat_id=origin.chat_id)
            if active >= lim.concurrent_per_chat:
                raise LimitExceeded(
                    f"This chat already has {active} unfinished jobs (limit "
                    f"{lim.concurrent_per_chat}). Wait for one to finish; /status shows them."
                )

    async def check_audio(self, origin: Origin, seconds: float) -> None:
        """Daily audio-minute caps for the user and the chat."""
        lim = self._limits
        if origin.platform == OPERATOR_PLATFORM:
            return
        for scope, cap, who in (
            ("your", lim.daily_audio_minutes_per_user, {"user_id": origin.user_id}),
            ("this chat's", lim.daily_audio_minutes_per_chat, {"chat_id": origin.chat_id}),
        ):
            if cap <= 0:
                continue
            now = self._clock()
            used, _ = await self._store.used_since(origin.platform, day_start(now), **who)
            if used + seconds > cap * 60:
                raise LimitExceeded(
                    f"This audio ({math.ceil(seconds / 60)} min) would exceed {scope} daily "
                    f"limit of {cap:g} audio minutes ({used / 60:.0f} used today). {_resets(now)}"
                )

    async def check_chars(self, origin: Origin, chars: int) -> None:
        """Length limit and daily character caps for /speak."""
        lim = self._limits
        if origin.platform == OPERATOR_PLATFORM:
            return
        if 0 < lim.max_speak_chars < chars:
            raise LimitExceeded(
                f"That text is {chars:,} characters; the limit is {lim.max_speak_chars:,}. "
                "Please send a shorter text."
            )
        for scope, cap, who in (
            ("your", lim.daily_tts_chars_per_user, {"user_id": origin.user_id}),
            ("this chat's", lim.daily_tts_chars_per_chat, {"chat_id": origin.chat_id}),
        ):
            if cap <= 0:
                continue
            now = self._clock()
            _, used = await self._store.used_since(origin.platform, day_start(now), **who)
            if used + chars > cap:
                raise LimitExceeded(
                    f"This text ({chars:,} characters) would exceed {scope} daily limit of "
                    f"{cap:,} characters ({used:,} used today). {_resets(now)}"
                )
