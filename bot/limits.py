"""Access lists and usage limits, checked before a paid job is created."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.config import AccessConfig, LimitsConfig
from bot.errors import InputError
from bot.jobs.models import Activity, Admission
from bot.models import Origin
from bot.ports import UsageQueries
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
        store: UsageQueries,
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

    async def _activity(self, origin: Origin) -> Activity:
        now = self._clock()
        return await self._store.activity(
            origin.platform,
            origin.user_id,
            origin.chat_id,
            started_since=now - 60,
            day=day_start(now),
        )

    async def check_start(self, origin: Origin) -> Activity | None:
        """Access, rate and concurrency limits: checked before any work is done.

        Returns:
            The activity read (None when no limit applies), for the daily checks that follow.

        Raises:
            AccessDenied, LimitExceeded: with the sentence to show.
        """
        if not self.allowed(origin):
            raise AccessDenied()
        if origin.platform == OPERATOR_PLATFORM or not self._limited():
            return None
        act = await self._activity(origin)
        self._check_start(act)
        return act

    def admission(
        self, origin: Origin, *, seconds: float = 0.0, chars: int = 0
    ) -> Admission | None:
        """Every limit, to check again inside the store's transaction that creates the job
        (:meth:`bot.ports.JobStore.create`): checks and creation are one atomic step, so a burst
        gets exactly the allowed number of jobs, across processes too."""
        if origin.platform == OPERATOR_PLATFORM or not self._limited():
            return None

        def check(act: Activity) -> None:
            self._check_start(act)
            if seconds:
                self._check_seconds(act, seconds)
            if chars:
                self._check_daily_chars(act, chars)

        now = self._clock()
        return Admission(started_since=now - 60, day=day_start(now), check=check)

    def _check_start(self, act: Activity) -> None:
        lim = self._limits
        if 0 < lim.jobs_per_minute <= act.started:
            raise LimitExceeded(
                f"You started {act.started} jobs in the last minute (limit "
                f"{lim.jobs_per_minute}). Please wait a minute and try again."
            )
        if 0 < lim.concurrent_per_user <= act.user_active:
            raise LimitExceeded(
                f"You already have {act.user_active} unfinished jobs (limit "
                f"{lim.concurrent_per_user}). Wait for one to finish; /status shows them."
            )
        if 0 < lim.concurrent_per_chat <= act.chat_active:
            raise LimitExceeded(
                f"This chat already has {act.chat_active} unfinished jobs (limit "
                f"{lim.concurrent_per_chat}). Wait for one to finish; /status shows them."
            )

    def _limited(self) -> bool:
        lim = self._limits
        return any(
            cap > 0
            for cap in (
                lim.jobs_per_minute,
                lim.concurrent_per_user,
                lim.concurrent_per_chat,
                lim.daily_audio_minutes_per_user,
                lim.daily_audio_minutes_per_chat,
                lim.daily_tts_chars_per_user,
                lim.daily_tts_chars_per_chat,
            )
        )

    async def check_audio(
        self, origin: Origin, seconds: float, activity: Activity | None = None
    ) -> None:
        """Daily audio-minute caps for the user and the chat (``activity`` from
        :meth:`check_start` saves reading it again)."""
        lim = self._limits
        caps = (lim.daily_audio_minutes_per_user, lim.daily_audio_minutes_per_chat)
        if origin.platform == OPERATOR_PLATFORM or not any(c > 0 for c in caps):
            return
        self._check_seconds(activity or await self._activity(origin), seconds)

    def _check_seconds(self, act: Activity, seconds: float) -> None:
        lim = self._limits
        caps = (lim.daily_audio_minutes_per_user, lim.daily_audio_minutes_per_chat)
        for scope, cap, used in (
            ("your", caps[0], act.user_seconds),
            ("this chat's", caps[1], act.chat_seconds),
        ):
            if 0 < cap * 60 < used + seconds:
                raise LimitExceeded(
                    f"This audio ({math.ceil(seconds / 60)} min) would exceed {scope} daily "
                    f"limit of {cap:g} audio minutes ({used / 60:.0f} used today). "
                    + _resets(self._clock())
                )

    async def check_chars(
        self, origin: Origin, chars: int, activity: Activity | None = None
    ) -> None:
        """Length limit and daily character caps for /speak."""
        lim = self._limits
        if origin.platform == OPERATOR_PLATFORM:
            return
        if 0 < lim.max_speak_chars < chars:
            raise LimitExceeded(
                f"That text is {chars:,} characters; the limit is {lim.max_speak_chars:,}. "
                "Please send a shorter text."
            )
        caps = (lim.daily_tts_chars_per_user, lim.daily_tts_chars_per_chat)
        if not any(c > 0 for c in caps):
            return
        self._check_daily_chars(activity or await self._activity(origin), chars)

    def _check_daily_chars(self, act: Activity, chars: int) -> None:
        lim = self._limits
        caps = (lim.daily_tts_chars_per_user, lim.daily_tts_chars_per_chat)
        for scope, cap, used in (
            ("your", caps[0], act.user_chars),
            ("this chat's", caps[1], act.chat_chars),
        ):
            if 0 < cap < used + chars:
                raise LimitExceeded(
                    f"This text ({chars:,} characters) would exceed {scope} daily limit of "
                    f"{cap:,} characters ({used:,} used today). " + _resets(self._clock())
                )
