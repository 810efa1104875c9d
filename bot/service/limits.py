"""Access lists and usage limits, checked before a paid job is created."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.config.load import AccessConfig, LimitsConfig
from bot.model.errors import InputError
from bot.model.job import Activity, Admission
from bot.model.speech import Origin
from bot.text import Duration, Msg, msg, msgn

OPERATOR_PLATFORM = "cli"  # the operator's own command line: no lists, no limits


class UsageQueries(Protocol):
    """What the limits and /usage read; answered off the job-step path."""

    async def activity(
        self, platform: str, user_id: str, chat_id: str, *, started_since: float, day: float
    ) -> Activity:
        """A user's and a chat's recent use, as the limits count it."""
        ...

    async def usage(self, since: float, platform: str | None = None) -> list[dict[str, Any]]:
        """Per user and chat since ``since``: jobs, audio seconds, characters, cost.

        Returns:
            Rows with keys platform, chat_id, user_id, jobs, audio_seconds, chars, cost, currency.
        """
        ...


class LimitExceeded(InputError):
    """A usage limit was hit; the message says which one and when it resets."""


class AccessDenied(InputError):
    """The user, chat or guild may not use this bot."""

    default_message = msg("This bot is not available here.")


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


def _until_reset(now: float) -> Duration:
    tomorrow = day_start(now) + timedelta(days=1).total_seconds()
    return Duration(tomorrow - now, short=True)


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
        exists (admins and the operator's own command line are always allowed)."""
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

    def check_access(self, origin: Origin) -> None:
        """The access lists (see :meth:`allowed`), as the first check of every request.

        Raises:
            AccessDenied: with the sentence to show.
        """
        if not self.allowed(origin):
            raise AccessDenied()

    async def check_start(self, origin: Origin) -> Activity | None:
        """Rate and concurrency limits, checked before any work is done (after
        :meth:`check_access`, which the caller does once, first).

        Returns:
            The activity read (None when no limit applies), for the daily checks that follow.

        Raises:
            LimitExceeded: with the sentence to show.
        """
        if origin.platform == OPERATOR_PLATFORM or not self._limited():
            return None
        act = await self._activity(origin)
        self._check_start(act)
        return act

    def admission(
        self,
        origin: Origin,
        *,
        seconds: float = 0.0,
        chars: int = 0,
        seen: Activity | None = None,
    ) -> Admission | None:
        """Every limit, to check again inside the store's transaction that creates the job
        (:meth:`bot.service.records.JobRecords.create`): checks and creation are one atomic
        step, so a burst gets exactly the allowed number of jobs, across processes too."""
        if origin.platform == OPERATOR_PLATFORM or not self._limited():
            return None

        def check(act: Activity) -> None:
            self._check_start(act)
            if seconds:
                self._check_seconds(act, seconds)
            if chars:
                self._check_daily_chars(act, chars)

        now = self._clock()
        return Admission(started_since=now - 60, day=day_start(now), check=check, seen=seen)

    def _check_start(self, act: Activity) -> None:
        lim = self._limits
        for message, cap, count in (
            (_STARTED, lim.jobs_per_minute, act.started),
            (_USER_ACTIVE, lim.concurrent_per_user, act.user_active),
            (_CHAT_ACTIVE, lim.concurrent_per_chat, act.chat_active),
        ):
            if 0 < cap <= count:
                raise LimitExceeded(
                    Msg(message.id, message.plural, count, {"n": count, "limit": cap})
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
        scopes = (
            (_AUDIO_USER, lim.daily_audio_minutes_per_user, act.user_seconds),
            (_AUDIO_CHAT, lim.daily_audio_minutes_per_chat, act.chat_seconds),
        )
        self._check_daily(scopes, seconds, 60, minutes=math.ceil(seconds / 60))

    async def check_chars(
        self, origin: Origin, chars: int, activity: Activity | None = None
    ) -> None:
        """Length limit and daily character caps for /speak."""
        lim = self._limits
        if origin.platform == OPERATOR_PLATFORM:
            return
        if 0 < lim.max_speak_chars < chars:
            raise LimitExceeded(text_too_long(chars, lim.max_speak_chars))
        caps = (lim.daily_tts_chars_per_user, lim.daily_tts_chars_per_chat)
        if not any(c > 0 for c in caps):
            return
        self._check_daily_chars(activity or await self._activity(origin), chars)

    def _check_daily_chars(self, act: Activity, chars: int) -> None:
        lim = self._limits
        scopes = (
            (_CHARS_USER, lim.daily_tts_chars_per_user, act.user_chars),
            (_CHARS_CHAT, lim.daily_tts_chars_per_chat, act.chat_chars),
        )
        self._check_daily(scopes, chars, 1, chars=chars)

    def _check_daily(
        self, scopes: Iterable[tuple[Msg, float, float]], adding: float, unit: float, **args: Any
    ) -> None:
        """Refuse when ``adding`` would pass a scope's daily cap (caps count in ``unit``s: 60
        for audio minutes against the seconds used, 1 for characters)."""
        for message, cap, used in scopes:
            if 0 < cap * unit < used + adding:
                reset = _until_reset(self._clock())
                shown = round(used / unit)
                raise LimitExceeded(_refusal(message, limit=cap, used=shown, reset=reset, **args))


def text_too_long(chars: int, limit: int) -> Msg:
    """The refusal for a /speak text over the length limit."""
    return msg(
        "That text is {chars} characters; the limit is {limit}. Please send a shorter text.",
        chars=chars,
        limit=limit,
    )


def _refusal(message: Msg, **args: object) -> Msg:
    return Msg(message.id, args=args)


# Templates: the count and arguments are filled in when a limit is hit (_check_start).
_STARTED = msgn(
    "You started {n} job in the last minute (limit {limit}). Please wait a minute and try again.",
    "You started {n} jobs in the last minute (limit {limit}). Please wait a minute and try again.",
    0,
)
_USER_ACTIVE = msgn(
    "You already have {n} unfinished job (limit {limit}). "
    "Wait for one to finish; /status shows them.",
    "You already have {n} unfinished jobs (limit {limit}). "
    "Wait for one to finish; /status shows them.",
    0,
)
_CHAT_ACTIVE = msgn(
    "This chat already has {n} unfinished job (limit {limit}). "
    "Wait for one to finish; /status shows them.",
    "This chat already has {n} unfinished jobs (limit {limit}). "
    "Wait for one to finish; /status shows them.",
    0,
)
# Whole sentences per scope: word order and grammar differ between "your" and "this chat's".
_AUDIO_USER = msg(
    "This audio ({minutes} min) would exceed your daily limit of {limit} audio minutes "
    "({used} used today). The limit resets at 00:00 UTC (in {reset})."
)
_AUDIO_CHAT = msg(
    "This audio ({minutes} min) would exceed this chat's daily limit of {limit} audio minutes "
    "({used} used today). The limit resets at 00:00 UTC (in {reset})."
)
_CHARS_USER = msg(
    "This text ({chars} characters) would exceed your daily limit of {limit} characters "
    "({used} used today). The limit resets at 00:00 UTC (in {reset})."
)
_CHARS_CHAT = msg(
    "This text ({chars} characters) would exceed this chat's daily limit of {limit} characters "
    "({used} used today). The limit resets at 00:00 UTC (in {reset})."
)
